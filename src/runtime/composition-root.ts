/**
 * The one place where services are wired (tsyringe). A test swaps one service by registering
 * its own in a child container; nothing is monkey-patched.
 */
import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { RuntimeConfig } from './config.js';
import { CONTAINER_STORE, REAPER, RUNTIME_CONFIG, type RuntimeContext } from './context.js';
import { createLogger, LOGGER, type Logger } from './logger.js';
import { ContainerStore } from './state/store.js';
import { CRIU_SERVICE, SwrkCriuService, type CriuService } from '../criu/service.js';
import { LinuxMountService, MOUNT_SERVICE, type MountService } from '../rootfs/mount-service.js';
import { LinuxProcessService, PROCESS_SERVICE, type ProcessService } from '../system/processes.js';
import { CommandOciRuntime, OCI_RUNTIME, type OciRuntime } from './oci-runtime.js';
import { Reaper } from '../system/reaper.js';

/** A container of services for one configuration. Registrations are container-scoped. */
export function composeRuntime(config: RuntimeConfig, parent: DependencyContainer = rootContainer): DependencyContainer {
  const services = parent.createChildContainer();
  services.register(RUNTIME_CONFIG, { useValue: config });
  services.register(LOGGER, {
    useValue: createLogger({ level: config.logLevel, format: config.logFormat, file: config.logFile }),
  });
  services.register(CONTAINER_STORE, { useValue: new ContainerStore(config.stateRoot) });
  services.register(CRIU_SERVICE, {
    useValue: new SwrkCriuService({ binary: config.criu, minimumVersion: config.minCriuVersion }),
  });
  services.register(MOUNT_SERVICE, { useValue: new LinuxMountService() });
  services.register(PROCESS_SERVICE, { useValue: new LinuxProcessService() });
  services.register(OCI_RUNTIME, { useValue: new CommandOciRuntime(config.ociRuntime) });
  services.register(REAPER, { useValue: new Reaper() });
  return services;
}

export function resolveContext(services: DependencyContainer): RuntimeContext {
  return {
    config: services.resolve<RuntimeConfig>(RUNTIME_CONFIG),
    logger: services.resolve<Logger>(LOGGER),
    store: services.resolve<ContainerStore>(CONTAINER_STORE),
    criu: services.resolve<CriuService>(CRIU_SERVICE),
    mounts: services.resolve<MountService>(MOUNT_SERVICE),
    processes: services.resolve<ProcessService>(PROCESS_SERVICE),
    ociRuntime: services.resolve<OciRuntime>(OCI_RUNTIME),
    reaper: services.resolve<Reaper>(REAPER),
  };
}
