/** `-p/--publish [HOST_IP:]HOST_PORT:CONTAINER_PORT`, repeatable, as docker writes it. */
import { checkPublished, parsePublish, type PublishedPort } from '../../ports.js';

export const publishFlag = {
  type: 'string',
  short: 'p',
  multiple: true,
  value: '[IP:]HOST_PORT:PORT',
  description: 'forward a host port to a container port (repeatable); it follows the container across restores and resets',
} as const;

export function publishOptions(values: readonly string[] | undefined): { ports?: readonly PublishedPort[] } {
  if (!values || values.length === 0) return {};
  return { ports: checkPublished(values.map(parsePublish)) };
}
