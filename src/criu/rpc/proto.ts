/**
 * CRIU's own rpc.proto (scripts/install-criu.sh installs it beside criu; Debian's libcriu-dev
 * ships it too), loaded once with protobufjs. Using the installed file keeps the wire format in
 * step with the installed CRIU.
 */
import protobuf from 'protobufjs';
import { existsSync } from 'node:fs';
import { RpcProtoMissingError } from '../errors.js';
import type { CriuReq, CriuResp } from './messages.js';

/** The one scripts/install-criu.sh installs. */
export const DEFAULT_RPC_PROTO = '/opt/runtime/criu/include/criu/rpc.proto';
/** libcriu-dev's, used when the default is not there. */
export const FALLBACK_RPC_PROTO = '/usr/include/criu/rpc.proto';

export function defaultRpcProto(): string {
  return !existsSync(DEFAULT_RPC_PROTO) && existsSync(FALLBACK_RPC_PROTO) ? FALLBACK_RPC_PROTO : DEFAULT_RPC_PROTO;
}

export interface RpcCodec {
  encodeRequest(request: CriuReq): Uint8Array;
  decodeResponse(bytes: Uint8Array): CriuResp;
}

const codecs = new Map<string, RpcCodec>();

export function rpcCodec(protoPath = process.env.RUNTIME_CRIU_RPC_PROTO ?? defaultRpcProto()): RpcCodec {
  const cached = codecs.get(protoPath);
  if (cached) return cached;
  if (!existsSync(protoPath)) throw new RpcProtoMissingError(protoPath);
  let root: protobuf.Root;
  try {
    root = new protobuf.Root().loadSync(protoPath, { keepCase: true });
  } catch (cause) {
    throw new RpcProtoMissingError(protoPath, { cause });
  }
  const requestType = root.lookupType('criu_req');
  const responseType = root.lookupType('criu_resp');
  const codec: RpcCodec = {
    encodeRequest(request) {
      const problem = requestType.verify(request);
      if (problem) throw new TypeError(`invalid CRIU request: ${problem}`);
      return requestType.encode(requestType.fromObject(request)).finish();
    },
    decodeResponse(bytes) {
      const message = responseType.decode(bytes);
      return responseType.toObject(message, { longs: Number, enums: Number, defaults: false }) as CriuResp;
    },
  };
  codecs.set(protoPath, codec);
  return codec;
}
