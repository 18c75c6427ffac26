import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const instructions = readInstructions(readFileSync(`${root}Dockerfile`, 'utf8'));
const dockerignore = readFileSync(`${root}.dockerignore`, 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

describe('Dockerfile', () => {
  it('is multi-stage and runs on node 20 bookworm-slim', () => {
    const froms = instructions.filter((line) => line.keyword === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(instructions.find((line) => line.keyword === 'ARG')?.args).toContain('node:20-bookworm-slim');
  });

  it('runs the final stage as a non-root user with NODE_ENV=production', () => {
    const final = finalStage();
    const user = final.filter((line) => line.keyword === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(final.some((line) => line.keyword === 'ENV' && /NODE_ENV=production/.test(line.args))).toBe(true);
  });

  it('checks health over HTTP and exposes port 4000', () => {
    const final = finalStage();
    expect(final.find((line) => line.keyword === 'HEALTHCHECK')?.args).toContain('/healthz');
    expect(final.find((line) => line.keyword === 'EXPOSE')?.args).toBe('4000');
  });

  it('starts dist/main.js with the all role by default', () => {
    const final = finalStage();
    const entrypoint = JSON.parse(
      final.find((line) => line.keyword === 'ENTRYPOINT')?.args ?? 'null',
    ) as string[];
    expect(entrypoint[0]).toBe('node');
    expect(entrypoint.at(-1)).toBe('dist/main.js');
    // Anything between is a node flag (the memory settings the benchmarks also use).
    for (const flag of entrypoint.slice(1, -1)) expect(flag).toMatch(/^--[a-z-]+(=\S+)?$/);
    expect(JSON.parse(final.find((line) => line.keyword === 'CMD')?.args ?? 'null')).toEqual(['all']);
  });

  it('copies only paths that exist in the repository and are in the build context', () => {
    const sources = instructions
      .filter((line) => line.keyword === 'COPY' && !/--from=/.test(line.args))
      .flatMap((line) => copySources(line.args));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'prisma', 'src']));
    for (const source of sources) {
      expect(existsSync(`${root}${source}`), source).toBe(true);
      expect(dockerignore, source).not.toContain(source);
    }
  });

  it('copies from stages it defines', () => {
    const stages = instructions
      .filter((line) => line.keyword === 'FROM')
      .map((line) => /\sAS\s+(\S+)/i.exec(line.args)?.[1])
      .filter((name): name is string => name !== undefined);
    const used = instructions
      .map((line) => /--from=(\S+)/.exec(line.args)?.[1])
      .filter((name): name is string => name !== undefined);
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) expect(stages, name).toContain(name);
  });
});

interface Instruction {
  keyword: string;
  args: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function readInstructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

function finalStage(): Instruction[] {
  const lastFrom = instructions.map((line) => line.keyword).lastIndexOf('FROM');
  return instructions.slice(lastFrom);
}

function copySources(args: string): string[] {
  const words = args.split(/\s+/).filter((word) => !word.startsWith('--'));
  return words.slice(0, -1).map((word) => word.replace(/^\.\//, '').replace(/\/$/, ''));
}
