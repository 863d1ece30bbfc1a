export { loadBundle, parseSpec, specHasNamespace, formatFieldPath, type Bundle } from './bundle.js';
export { InvalidBundleError, type BundleProblem } from './errors.js';
export {
  SpecSchema,
  ProcessSchema,
  RootSchema,
  MountSchema,
  HookSchema,
  LinuxSchema,
  LinuxNamespaceSchema,
  LinuxDeviceSchema,
  NamespaceTypeSchema,
  namespaceTypes,
  type Spec,
  type Process,
  type Root,
  type Mount,
  type Hook,
  type Hooks,
  type Linux,
  type LinuxNamespace,
  type NamespaceType,
  type LinuxDevice,
  type LinuxResources,
  type IdMapping,
} from './spec.js';
export { OciStateSchema, OciStatusSchema, ociStatuses, type OciState, type OciStatus } from './state.js';
