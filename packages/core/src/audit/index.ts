export { AuditLog } from './audit-log';
export * from './types';
