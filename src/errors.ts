/**
 * Expected failures are outcomes the caller can act on; each carries a stable code. The API
 * maps the four public families (validation, not found, conflict, precondition) to the
 * GraphQL error types of the same name; anything else is a bug and is masked to clients.
 */
export class AppError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input: nothing was changed. `field` names the offending input field when known. */
export class ValidationError extends AppError<'VALIDATION'> {
  constructor(
    message: string,
    readonly field: string | null = null,
    options?: ErrorOptions,
  ) {
    super('VALIDATION', message, options);
  }
}

/** The thing asked for does not exist (or is not visible). */
export class NotFoundError extends AppError<'NOT_FOUND'> {
  constructor(message: string, options?: ErrorOptions) {
    super('NOT_FOUND', message, options);
  }
}

/** The request collides with existing state (a taken name, a run already going). */
export class ConflictError extends AppError<'CONFLICT'> {
  constructor(message: string, options?: ErrorOptions) {
    super('CONFLICT', message, options);
  }
}

/** The request is well formed but the current state does not allow it. */
export class PreconditionFailedError extends AppError<'PRECONDITION_FAILED'> {
  constructor(message: string, options?: ErrorOptions) {
    super('PRECONDITION_FAILED', message, options);
  }
}

/** A configuration value is missing or malformed; the message is one line naming the variable. */
export class ConfigError extends AppError<'CONFIG'> {
  constructor(message: string) {
    super('CONFIG', message);
  }
}
