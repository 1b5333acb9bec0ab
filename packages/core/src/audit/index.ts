export { AUDIT_SCAN_BUDGET, type AuditFilter, AuditLog } from './audit-log';
export * from './types';
