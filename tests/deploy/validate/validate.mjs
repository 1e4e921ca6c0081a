// Validates rendered Kubernetes manifests (YAML streams) against the API
// schemas of the npm package kubernetes-models (and
// @kubernetes-models/prometheus-operator for ServiceMonitor and
// PrometheusRule): types, required fields, enums, formats. The models accept
// unknown fields, which the API server rejects under strict field validation
// (kubectl's default) and a typo turns into a silently ignored setting, so
// this also walks each object against the models' type declarations and
// reports every field they do not declare.
//
//   node validate.mjs FILE.yaml...      exit 0: every object valid
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// apiVersion -> module prefix of its models.
function modelModule(apiVersion, kind) {
  if (apiVersion === "v1") return `kubernetes-models/v1/${kind}`;
  const [group, version] = apiVersion.split("/");
  if (group === "monitoring.coreos.com") {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  }
  return `kubernetes-models/${group}/${version}/${kind}`;
}

// ---- strict field check from the models' .d.ts declarations ----
const dtsCache = new Map();

function dtsPath(spec, fromFile) {
  if (spec.startsWith(".")) return join(dirname(fromFile), spec) + ".d.ts";
  const parts = spec.split("/");
  const pkg = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  const rest = parts.slice(pkg.split("/").length).join("/");
  const pkgJson = require.resolve(`${pkg}/package.json`);
  return join(dirname(pkgJson), rest) + ".d.ts";
}

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

// Splits "a; b; c" at top level (outside {} and <>).
function splitTop(text, sep) {
  const out = [];
  let depth = 0, start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{" || c === "<" || c === "(") depth++;
    else if (c === "}" || c === ">" || c === ")") depth--;
    else if (c === sep && depth === 0) { out.push(text.slice(start, i)); start = i + 1; }
  }
  out.push(text.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

function parseProps(body, file) {
  const props = new Map();
  for (const entry of splitTop(body, ";")) {
    const m = entry.match(/^"?([^"?:]+)"?\??\s*:\s*([\s\S]*)$/);
    if (m) props.set(m[1], parseType(m[2].trim(), file));
  }
  return { kind: "object", props };
}

function parseType(t, file) {
  let m;
  if ((m = t.match(/^Array<([\s\S]*)>$/))) return { kind: "array", elem: parseType(m[1].trim(), file) };
  if ((m = t.match(/^\{\s*\[key: string\]:\s*([\s\S]*?);?\s*\}$/))) return { kind: "map", value: parseType(m[1].trim(), file) };
  if (t.startsWith("{")) return parseProps(t.slice(1, -1), file);
  if (/^I[A-Za-z0-9]+$/.test(t)) return { kind: "ref", name: t, file };
  return { kind: "leaf" };
}

// The object type a .d.ts file declares (its first interface), or a leaf
// for type aliases such as IntOrString.
function declaredType(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  const text = stripComments(readFileSync(file, "utf8"));
  const imports = new Map();
  for (const m of text.matchAll(/import \{([^}]*)\} from "([^"]+)"/g)) {
    for (const name of m[1].split(",").map((s) => s.trim().split(/\s+as\s+/).pop())) {
      if (name) imports.set(name, m[2]);
    }
  }
  let type = { kind: "leaf" };
  const start = text.search(/export interface I\w+[^{]*\{/);
  if (start >= 0) {
    const open = text.indexOf("{", start);
    let depth = 0, end = open;
    for (; end < text.length; end++) {
      if (text[end] === "{") depth++;
      else if (text[end] === "}" && --depth === 0) break;
    }
    type = parseProps(text.slice(open + 1, end), file);
  }
  const entry = { type, imports };
  dtsCache.set(file, entry);
  return entry;
}

function resolve(type) {
  if (type.kind !== "ref") return type;
  const { imports } = declaredType(type.file);
  const spec = imports.get(type.name);
  if (!spec) return { kind: "leaf" };
  const file = dtsPath(spec, type.file);
  if (!existsSync(file)) return { kind: "leaf" };
  return declaredType(file).type;
}

function unknownFields(value, type, path, errors) {
  type = resolve(type);
  if (value === null || value === undefined) return;
  if (type.kind === "array" && Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, type.elem, `${path}[${i}]`, errors));
  } else if (type.kind === "map" && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) unknownFields(v, type.value, `${path}.${k}`, errors);
  } else if (type.kind === "object" && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (!type.props.has(k)) errors.push(`${path ? path + "." : ""}${k}: unknown field`);
      else unknownFields(v, type.props.get(k), path ? `${path}.${k}` : k, errors);
    }
  }
}

// ---- main ----
let failed = 0, checked = 0;
for (const file of process.argv.slice(2)) {
  const seen = new Set();
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      console.log(`${file}: YAML error: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    const id = `${obj.kind}/${obj.metadata?.name}`;
    const errors = [];
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
      errors.push("apiVersion, kind and metadata.name are required");
    } else {
      if (seen.has(id)) errors.push("a second object with this kind and name");
      seen.add(id);
      const spec = modelModule(obj.apiVersion, obj.kind);
      let mod;
      try {
        mod = await import(spec);
      } catch (e) {
        errors.push(`no schema for ${obj.apiVersion} ${obj.kind} (${spec}): ${e.message}`);
      }
      const Model = mod?.[obj.kind];
      if (Model) {
        try {
          new Model(obj).validate();
        } catch (e) {
          for (const err of e.errors ?? [{ instancePath: "", message: e.message }]) {
            errors.push(`${err.instancePath || "/"}: ${err.message}${err.params ? " " + JSON.stringify(err.params) : ""}`);
          }
        }
        const dts = dtsPath(spec, join(here, "package.json"));
        if (existsSync(dts)) unknownFields(obj, declaredType(dts).type, "", errors);
        else errors.push(`no type declarations at ${dts}`);
      }
    }
    checked++;
    if (errors.length) {
      failed++;
      console.log(`FAIL ${file}: ${id}`);
      for (const e of errors) console.log(`  ${e}`);
    } else {
      console.log(`ok   ${file}: ${obj.apiVersion} ${id}`);
    }
  }
}
console.log(`${checked} objects checked, ${failed} invalid`);
process.exit(failed || checked === 0 ? 1 : 0);
