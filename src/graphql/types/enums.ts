import {
  ApiRole,
  DatabaseStatus,
  IsolationMode,
  RunKind,
  RunStatus,
  TenantEnvironment,
  TenantStatus,
  TransactionMode,
} from '../../generated/prisma/enums.js';
import { RunEventType } from '../../pubsub/run-events.js';
import { builder } from '../builder.js';

export const TenantEnvironmentEnum = builder.enumType(TenantEnvironment, { name: 'TenantEnvironment' });
export const TenantStatusEnum = builder.enumType(TenantStatus, { name: 'TenantStatus' });
export const DatabaseStatusEnum = builder.enumType(DatabaseStatus, { name: 'DatabaseStatus' });
export const IsolationModeEnum = builder.enumType(IsolationMode, { name: 'IsolationMode' });
export const RunKindEnum = builder.enumType(RunKind, { name: 'RunKind' });
export const RunStatusEnum = builder.enumType(RunStatus, { name: 'RunStatus' });
export const TransactionModeEnum = builder.enumType(TransactionMode, { name: 'TransactionMode' });
export const ApiRoleEnum = builder.enumType(ApiRole, { name: 'ApiRole' });
export const RunEventTypeEnum = builder.enumType(RunEventType, { name: 'RunEventType' });

/** Target statuses as the API shows them: the internal QUEUED is reported as PENDING. */
export const PUBLIC_TARGET_STATUSES = [
  'PENDING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'SKIPPED',
  'CANCELLED',
] as const;
export type PublicTargetStatus = (typeof PUBLIC_TARGET_STATUSES)[number];
export const TargetStatusEnum = builder.enumType('TargetStatus', { values: PUBLIC_TARGET_STATUSES });

/** The API status of a stored target status. */
export function publicTargetStatus(status: string): PublicTargetStatus {
  return status === 'QUEUED' ? 'PENDING' : (status as PublicTargetStatus);
}

/** The stored statuses an API status filter covers (PENDING includes QUEUED). */
export function storedTargetStatuses(statuses: readonly PublicTargetStatus[]) {
  return statuses.flatMap((status) => (status === 'PENDING' ? (['PENDING', 'QUEUED'] as const) : [status]));
}

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  values: ['VALIDATION', 'NOT_FOUND', 'CONFLICT', 'PRECONDITION_FAILED', 'FORBIDDEN'] as const,
});
