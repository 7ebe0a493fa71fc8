/**
 * Resolving a genotype argument as given on a command line (Node only: reads files).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { type Genotype, parseGenotypeJSON, PUBLISHED_GENOTYPE_NAMES, publishedGenotype } from './genotype.js';
import { parsePythonGenotype } from './genotype-python.js';

function isPublishedName(name: string): boolean {
  return (PUBLISHED_GENOTYPE_NAMES as readonly string[]).includes(name);
}

/** Parses a genotype text of either form: JSON if it starts with '{', else Python. */
function parseGenotypeText(text: string, source: string): Genotype {
  return text.trimStart().startsWith('{') ? parseGenotypeJSON(text, source) : parsePythonGenotype(text, source);
}

/**
 * Resolves a genotype argument (as given on a command line): a published name
 * (PC_DARTS_cifar, ...), a run directory holding genotype.json, a .json file (the genotype,
 * or an object with a `genotype` field), a file with the Python form, or the Python/JSON text
 * itself. Node-only (reads files).
 */
export function loadGenotype(spec: string): Genotype {
  if (isPublishedName(spec)) return publishedGenotype(spec);
  const trimmed = spec.trimStart();
  if (trimmed.startsWith('{') || /^Genotype\s*\(/.test(trimmed)) return parseGenotypeText(spec, 'the argument');
  let isDirectory: boolean;
  try {
    isDirectory = statSync(spec).isDirectory();
  } catch {
    throw new Error(
      `genotype '${spec}': expected a published name (${PUBLISHED_GENOTYPE_NAMES.join(', ')}), ` +
        'a genotype file (.json or Python form) or a run directory containing genotype.json; no such name, file or directory',
    );
  }
  const path = isDirectory ? join(spec, 'genotype.json') : spec;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new Error(
      isDirectory
        ? `genotype '${spec}': a directory, so expected a run directory containing genotype.json; ${path}: ${reason}`
        : `genotype '${spec}': cannot read the file: ${reason}`,
    );
  }
  return path.toLowerCase().endsWith('.json') ? parseGenotypeJSON(text, path) : parseGenotypeText(text, path);
}
