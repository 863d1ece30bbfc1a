/**
 * The one place where services are wired (tsyringe). Each service is a factory cached per
 * container that resolves what it depends on from the container it is resolved in: a test
 * registers its own CRIU (or mounts, cgroups, processes, ...) in a child container, and every
 * service resolved there uses it. Nothing is monkey-patched.
 */
import 'reflect-metadata';
import { container as rootContainer, instancePerContainerCachingFactory, type DependencyContainer } from 'tsyringe';
import type { RuntimeConfig } from './config.js';
import { CONTAINER_STORE, MONITOR_CLIENT, REAPER, RUNTIME_CONFIG, SNAPSHOT_STORE, type RuntimeContext } from './context.js';
import { createLogger, LOGGER, type Logger } from './logger.js';
import { ContainerStore } from './state/store.js';
import { SnapshotStore } from './snapshots/store.js';
import { CGROUP_SERVICE, LinuxCgroupService, type CgroupService } from './cgroups.js';
import { CommandOciRuntime, OCI_RUNTIME, type OciRuntime } from './oci-runtime.js';
import { ProcessMonitorClient, type MonitorClient } from './monitor/launch.js';
import { CRIU_SERVICE, SwrkCriuService, type CriuService } from '../criu/service.js';
import { LinuxMountService, MOUNT_SERVICE, type MountService } from '../rootfs/mount-service.js';
import { LinuxProcessService, PROCESS_SERVICE, type ProcessService } from '../system/processes.js';
import { Reaper, type ChildReaper } from '../system/reaper.js';

function cached<T>(build: (services: DependencyContainer) => T) {
  return { useFactory: instancePerContainerCachingFactory<T>(build) };
}

/** A container of services for one configuration. */
export function composeRuntime(config: RuntimeConfig, parent: DependencyContainer = rootContainer): DependencyContainer {
  const services = parent.createChildContainer();
  const configOf = (c: DependencyContainer) => c.resolve<RuntimeConfig>(RUNTIME_CONFIG);
  services.register(RUNTIME_CONFIG, { useValue: config });
  services.register(
    LOGGER,
    cached((c) => {
      const { logLevel, logFormat, logFile } = configOf(c);
      return createLogger({ level: logLevel, format: logFormat, file: logFile });
    }),
  );
  services.register(
    CONTAINER_STORE,
    cached((c) => new ContainerStore(configOf(c).stateRoot)),
  );
  services.register(
    SNAPSHOT_STORE,
    cached((c) => new SnapshotStore(configOf(c).checkpointRoot)),
  );
  services.register(
    CRIU_SERVICE,
    cached((c) => new SwrkCriuService({ binary: configOf(c).criu, minimumVersion: configOf(c).minCriuVersion })),
  );
  services.register(
    MOUNT_SERVICE,
    cached(() => new LinuxMountService()),
  );
  services.register(
    PROCESS_SERVICE,
    cached(() => new LinuxProcessService()),
  );
  services.register(
    CGROUP_SERVICE,
    cached((c) => new LinuxCgroupService(c.resolve<MountService>(MOUNT_SERVICE), c.resolve<ProcessService>(PROCESS_SERVICE))),
  );
  services.register(
    OCI_RUNTIME,
    cached((c) => new CommandOciRuntime(configOf(c).ociRuntime)),
  );
  services.register(
    REAPER,
    cached(() => new Reaper()),
  );
  services.register(
    MONITOR_CLIENT,
    cached((c) => new ProcessMonitorClient(configOf(c), c.resolve<ContainerStore>(CONTAINER_STORE))),
  );
  return services;
}

export function resolveContext(services: DependencyContainer): RuntimeContext {
  return {
    config: services.resolve<RuntimeConfig>(RUNTIME_CONFIG),
    logger: services.resolve<Logger>(LOGGER),
    store: services.resolve<ContainerStore>(CONTAINER_STORE),
    snapshots: services.resolve<SnapshotStore>(SNAPSHOT_STORE),
    criu: services.resolve<CriuService>(CRIU_SERVICE),
    mounts: services.resolve<MountService>(MOUNT_SERVICE),
    cgroups: services.resolve<CgroupService>(CGROUP_SERVICE),
    processes: services.resolve<ProcessService>(PROCESS_SERVICE),
    ociRuntime: services.resolve<OciRuntime>(OCI_RUNTIME),
    reaper: services.resolve<ChildReaper>(REAPER),
    monitors: services.resolve<MonitorClient>(MONITOR_CLIENT),
  };
}
