export { type AuditFilter, AuditLog } from './audit-log';
export * from './types';
