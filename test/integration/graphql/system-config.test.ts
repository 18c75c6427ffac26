import { describe, expect, it } from 'vitest';
import { useApiHarness } from './harness.js';

const SET = `mutation ($input: SetSystemConfigInput!) { setSystemConfig(input: $input) {
  __typename ... on SetSystemConfigSuccess { config { key value updatedAt } } ... on ValidationError { field code } } }`;

describe('system config', () => {
  const api = useApiHarness();

  const values: Record<string, unknown> = {
    object: { nested: { list: [1, 'two', false, null], empty: {} }, n: -1.5 },
    array: [{ a: 1 }, [2, [3]], 'x', true, null],
    string: 'héllo "world" \\ \n',
    number: 12345.678,
    integer: 0,
    boolean: false,
    emptyObject: {},
    emptyArray: [],
  };

  it('round-trips JSON values of every shape through variables', async () => {
    for (const [name, value] of Object.entries(values)) {
      const key = `shape.${name}`;
      const set = await api.gql(SET, { input: { key, value } });
      expect(set.errors).toBeUndefined();
      expect(set.data?.setSystemConfig.config).toMatchObject({ key, value });
      const read = await api.gql('query ($key: String!) { systemConfig(key: $key) { value } }', { key });
      expect(read.data?.systemConfig.value).toEqual(value);
    }
    const all = await api.gql('{ systemConfigs { key value } }');
    expect(all.data?.systemConfigs).toHaveLength(Object.keys(values).length);
  });

  it('accepts inline JSON literals', async () => {
    const result = await api.gql(
      'mutation { setSystemConfig(input: { key: "inline:1", value: { a: [1, "b", null, true], c: 2.5 } }) { __typename } }',
    );
    expect(result.data?.setSystemConfig.__typename).toBe('SetSystemConfigSuccess');
    const read = await api.gql('{ systemConfig(key: "inline:1") { value } }');
    expect(read.data?.systemConfig.value).toEqual({ a: [1, 'b', null, true], c: 2.5 });
  });

  it('replaces a value and refuses bad keys', async () => {
    await api.gql(SET, { input: { key: 'replace-me', value: 1 } });
    await api.gql(SET, { input: { key: 'replace-me', value: { now: 'object' } } });
    const read = await api.gql('{ systemConfig(key: "replace-me") { value } }');
    expect(read.data?.systemConfig.value).toEqual({ now: 'object' });
    for (const key of ['', 'has space', 'x'.repeat(256), 'semi;colon']) {
      const result = await api.gql(SET, { input: { key, value: 1 } });
      expect(result.data?.setSystemConfig).toEqual({
        __typename: 'ValidationError',
        field: 'key',
        code: 'VALIDATION',
      });
    }
  });

  it('deletes entries (ADMIN) and reports unknown keys as NotFoundError', async () => {
    await api.gql(SET, { input: { key: 'to-delete', value: 'x' } });
    const DELETE = `mutation ($key: String!) { deleteSystemConfig(input: { key: $key }) {
      __typename ... on DeleteSystemConfigSuccess { key } ... on NotFoundError { code } } }`;
    expect((await api.gql(DELETE, { key: 'to-delete' })).data?.deleteSystemConfig).toEqual({
      __typename: 'DeleteSystemConfigSuccess',
      key: 'to-delete',
    });
    expect((await api.gql(DELETE, { key: 'to-delete' })).data?.deleteSystemConfig).toEqual({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
    });
    const operator = await api.createToken('OPERATOR');
    const denied = await api.gql(DELETE, { key: 'shape.string' }, operator);
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await api.app.db.systemConfig.count({ where: { key: 'shape.string' } })).toBe(1);
  });
});
