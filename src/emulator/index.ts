/** The embedded Imagicle emulator: public surface. */
export { startEmulator, createEmulatorApp, DEFAULT_MAX_FILE_BYTES } from './server.js';
export type { EmulatorOptions, RunningEmulator } from './server.js';
export type { EmulatorAppDeps } from './app.js';
export { RecordingStore } from './store.js';
export type { StoredRecording, RecordingFormat, Codec } from './recording.js';
export { FaultInjector, faultSchema } from './faults.js';
export type { Fault, FaultInput, PendingFault } from './faults.js';
export { EmulatorStats } from './stats.js';
export type { EmulatorStatsSnapshot } from './stats.js';
export type { Credentials } from './auth.js';
export { ACCEPTED_CONTENT_TYPES } from './content-type.js';
export { UPLOAD_PATH } from './upload-route.js';
export { ReadAccess, READ_REFUSALS } from './read-routes.js';
export type { ReadRefusal } from './read-routes.js';
export type { ListedRecording, RecordingDetail } from './reads.js';
