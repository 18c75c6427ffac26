/** The control plane's table of schema templates (`provision_templates`), over plain pg. */
import type { Pool } from 'pg';
import type { SchemaTemplateSql } from './schema-template-sql.js';

/** A stored schema template and the fingerprint its scratch schema was verified against. */
export interface StoredSchemaTemplate extends SchemaTemplateSql {
  readonly fingerprintHash: string;
}

/** Reads and writes schema templates by catalog checksum and PostgreSQL major version. */
export interface SchemaTemplateStore {
  load(catalogChecksum: string, serverMajor: number): Promise<StoredSchemaTemplate | null>;
  /** Stores a template unless one is stored already; returns the stored one (the first wins). */
  save(
    catalogChecksum: string,
    serverMajor: number,
    template: StoredSchemaTemplate,
  ): Promise<StoredSchemaTemplate>;
}

/** The store on the control-plane pool. */
export function createSchemaTemplateStore(pool: Pool): SchemaTemplateStore {
  async function load(catalogChecksum: string, serverMajor: number): Promise<StoredSchemaTemplate | null> {
    const { rows } = await pool.query<{
      placeholder: string;
      template_sql: string;
      fingerprint_hash: string;
    }>(
      `SELECT placeholder, template_sql, fingerprint_hash FROM control_plane.provision_templates
        WHERE catalog_checksum = $1 AND server_major = $2`,
      [catalogChecksum, serverMajor],
    );
    const row = rows[0];
    return row
      ? { placeholder: row.placeholder, sql: row.template_sql, fingerprintHash: row.fingerprint_hash }
      : null;
  }
  return {
    load,
    async save(catalogChecksum, serverMajor, template) {
      // Two workers may build the same template at once; the first one's row stays.
      await pool.query(
        `INSERT INTO control_plane.provision_templates
           (catalog_checksum, server_major, placeholder, template_sql, fingerprint_hash)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
        [catalogChecksum, serverMajor, template.placeholder, template.sql, template.fingerprintHash],
      );
      const stored = await load(catalogChecksum, serverMajor);
      if (!stored) throw new Error(`schema template ${catalogChecksum} vanished while it was saved`);
      return stored;
    },
  };
}
