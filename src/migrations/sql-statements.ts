/**
 * Splits a SQL file into statements. Only no-transaction files need it: pg runs a
 * multi-statement simple query as one implicit transaction, which `CREATE INDEX CONCURRENTLY`
 * refuses, so those files are sent one statement at a time.
 */

/** One statement of a file and where it starts (0-based character offset within the file). */
export interface SqlStatement {
  readonly text: string;
  readonly offset: number;
}

/** Splits on top-level semicolons, respecting quotes, dollar quotes and comments; drops empty statements. */
export function splitSqlStatements(sql: string): SqlStatement[] {
  const statements: SqlStatement[] = [];
  let start = 0;
  let i = 0;
  const push = (end: number) => {
    const text = sql.slice(start, end);
    if (stripComments(text).trim() !== '') statements.push({ text, offset: start });
  };
  while (i < sql.length) {
    const char = sql[i];
    const next = sql[i + 1];
    if (char === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
    } else if (char === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (char === "'" || char === '"') {
      i = skipQuoted(sql, i, char);
    } else if (char === '$') {
      const tag = /^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? sql.length : end + tag[0].length;
      } else {
        i += 1;
      }
    } else if (char === ';') {
      push(i + 1);
      i += 1;
      start = i;
    } else {
      i += 1;
    }
  }
  push(sql.length);
  return statements;
}

function skipQuoted(sql: string, from: number, quote: string): number {
  let i = from + 1;
  while (i < sql.length) {
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i += 1;
    }
  }
  return sql.length;
}

function skipBlockComment(sql: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth += 1;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  return sql.length;
}

function stripComments(text: string): string {
  return text.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '').replace(/;/g, '');
}
