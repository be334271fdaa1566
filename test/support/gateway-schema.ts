import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { parseDocument } from "yaml";

/** The committed JSON Schema that gateway.yaml files point editors at. */
export const SCHEMA_FILE = fileURLToPath(new URL("../../../src/config/gateway.schema.json", import.meta.url));

const validate = new Ajv({ strict: true, strictRequired: false, allErrors: true, allowUnionTypes: true }).compile(JSON.parse(readFileSync(SCHEMA_FILE, "utf8")) as object);

/** What an editor would flag in a gateway.yaml: YAML errors, then schema errors; empty when valid. */
export function schemaProblems(yamlText: string): string[] {
  const doc = parseDocument(yamlText);
  if (doc.errors.length > 0) return doc.errors.map((e) => `YAML: ${e.message.split("\n")[0]}`);
  if (validate(doc.toJS())) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`);
}

/** Throws when a config a test is about to use would not pass the schema users' editors check. */
export function assertSchemaValid(yamlText: string): void {
  const problems = schemaProblems(yamlText);
  if (problems.length > 0) throw new Error(`gateway.yaml does not match ${SCHEMA_FILE}:\n${problems.join("\n")}\n---\n${yamlText}`);
}
