import type { AppError } from '../../errors.js';
import { ConflictError, NotFoundError, PreconditionFailedError, ValidationError } from '../../errors.js';
import { builder } from '../builder.js';
import { ErrorCodeEnum } from './enums.js';

type PublicCode = 'VALIDATION' | 'NOT_FOUND' | 'CONFLICT' | 'PRECONDITION_FAILED' | 'FORBIDDEN';

/** The `Error` interface every expected-failure type of a result union implements. */
export const ErrorInterface = builder.interfaceRef<AppError>('Error').implement({
  fields: (t) => ({
    message: t.exposeString('message'),
    code: t.field({ type: ErrorCodeEnum, resolve: (error) => error.code as PublicCode }),
  }),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ValidationError,
  fields: (t) => ({ field: t.exposeString('field', { nullable: true }) }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof NotFoundError,
  fields: () => ({}),
});

builder.objectType(ConflictError, {
  name: 'ConflictError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof ConflictError,
  fields: () => ({}),
});

builder.objectType(PreconditionFailedError, {
  name: 'PreconditionFailedError',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof PreconditionFailedError,
  fields: () => ({}),
});

export { ValidationError, NotFoundError, ConflictError, PreconditionFailedError };
