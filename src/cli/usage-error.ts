import { AppError } from '../errors.js';

/** Bad command-line usage: the CLI prints the usage text and exits 2. */
export class UsageError extends AppError<'USAGE'> {
  constructor(message: string) {
    super('USAGE', message);
  }
}
