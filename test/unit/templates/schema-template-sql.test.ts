import { describe, expect, it } from 'vitest';
import { renderSchemaTemplate, schemaTemplateFromDump } from '../../../src/templates/schema-template-sql.js';

// The shape of `pg_dump --schema=cp_template_x --no-owner --no-privileges --inserts` (PostgreSQL 15.20).
const DUMP = `--
-- PostgreSQL database dump
--

\\restrict PxA1547wSNK97Rx3kISk5GN30DE9fZiBDTBIrUbdL3aejo9EEc8qxP92KnmbUv2

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;

--
-- Name: cp_template_x; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA cp_template_x;


--
-- Name: SCHEMA cp_template_x; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA cp_template_x IS 'scratch';


--
-- Name: bump(); Type: FUNCTION; Schema: cp_template_x; Owner: -
--

CREATE FUNCTION cp_template_x.bump() RETURNS void
    LANGUAGE sql
    AS $$
UPDATE counters
SET default_tablespace = 1;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: plans; Type: TABLE; Schema: cp_template_x; Owner: -
--

CREATE TABLE cp_template_x.plans (
    id integer DEFAULT nextval('cp_template_x.plans_id_seq'::regclass) NOT NULL,
    note text DEFAULT 'cp_template_xy'::text
);


--
-- Data for Name: plans; Type: TABLE DATA; Schema: cp_template_x; Owner: -
--

INSERT INTO cp_template_x.plans VALUES (1, 'free');


--
-- PostgreSQL database dump complete
--

\\unrestrict PxA1547wSNK97Rx3kISk5GN30DE9fZiBDTBIrUbdL3aejo9EEc8qxP92KnmbUv2

`;

describe('schemaTemplateFromDump', () => {
  it('keeps the objects and data, without session setup, the schema itself or psql meta-commands', () => {
    const template = schemaTemplateFromDump(DUMP, 'cp_template_x');
    expect(template.placeholder).toBe('cp_template_x');
    expect(template.sql).toBe(`-- FUNCTION bump()
CREATE FUNCTION cp_template_x.bump() RETURNS void
    LANGUAGE sql
    AS $$
UPDATE counters
SET default_tablespace = 1;
$$;

-- TABLE plans
CREATE TABLE cp_template_x.plans (
    id integer DEFAULT nextval('cp_template_x.plans_id_seq'::regclass) NOT NULL,
    note text DEFAULT 'cp_template_xy'::text
);

-- TABLE DATA plans
INSERT INTO cp_template_x.plans VALUES (1, 'free');`);
  });

  it('refuses a dump without object entries', () => {
    expect(() => schemaTemplateFromDump('SET statement_timeout = 0;\n', 'cp_template_x')).toThrow(
      /no object entries/,
    );
  });
});

describe('renderSchemaTemplate', () => {
  it('replaces whole mentions of the scratch schema by the quoted tenant schema, and nothing else', () => {
    const sql = renderSchemaTemplate(schemaTemplateFromDump(DUMP, 'cp_template_x'), 'tenant_acme');
    expect(sql).toContain(`CREATE TABLE "tenant_acme".plans (`);
    expect(sql).toContain(`nextval('"tenant_acme".plans_id_seq'::regclass)`);
    expect(sql).toContain(`'cp_template_xy'::text`);
    expect(sql).not.toMatch(/cp_template_x\b/);
  });
});
