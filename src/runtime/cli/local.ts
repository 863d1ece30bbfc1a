/**
 * The few services that `state`, `list` and a `reset` asked of a monitor need: the configuration,
 * the container store, /proc and the monitor's control socket, made as the composition root makes
 * them but without loading it. The composition root brings in every service and its dependencies
 * (CRIU's RPC codec, the FFI, the OCI spec's schemas), about 200 ms of module loading here, and
 * these commands are called once per test by test suites.
 */
import type { RuntimeConfig } from '../config.js';
import type { ContainerStore } from '../state/store.js';
import type { ProcessService } from '../../system/processes.js';
import type { MonitorClient } from '../monitor/launch.js';

export interface LocalServices {
  readonly config: RuntimeConfig;
  readonly store: ContainerStore;
  readonly processes: ProcessService;
  readonly monitors: MonitorClient;
}

export async function localServices(overrides: Partial<RuntimeConfig>): Promise<LocalServices> {
  const [{ resolveConfig }, { ContainerStore }, { LinuxProcessService }, { ProcessMonitorClient }] = await Promise.all([
    import('../config.js'),
    import('../state/store.js'),
    import('../../system/processes.js'),
    import('../monitor/launch.js'),
  ]);
  const config = resolveConfig({ overrides });
  const store = new ContainerStore(config.stateRoot);
  return { config, store, processes: new LinuxProcessService(), monitors: new ProcessMonitorClient(config, store) };
}
