import * as fs from 'fs';
import { ConfigError, InputError } from '../util/errors';

/** Parsers for command-line values, each with an error that names the option. */

export function parseInteger(option: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed))
      throw new ConfigError(`${option} must be an integer; got '${value}'`);
    return parsed;
  };
}

export function parseNumber(option: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed))
      throw new ConfigError(`${option} must be a number; got '${value}'`);
    return parsed;
  };
}

export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

export function parseIntegerList(option: string) {
  return (value: string): number[] => parseList(value).map(parseInteger(option));
}

/** `key=value` pairs gathered into an object; values parse as JSON where they can. */
export function collectKeyValue(pair: string, previous: Record<string, unknown> = {}) {
  const separator = pair.indexOf('=');
  if (separator < 1) throw new ConfigError(`expected key=value, got '${pair}'`);

  const key = pair.slice(0, separator);
  const text = pair.slice(separator + 1);
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // a bare word such as mean-clamped stays a string
  }
  return { ...previous, [key]: value };
}

/** Reads a JSON config file, naming it on any error. */
export function readConfigFile(file: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new InputError('config file not found', file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new InputError(`config is not valid JSON (${(error as Error).message})`, file);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InputError('config must be a JSON object of training options', file);
  }
  return parsed as Record<string, unknown>;
}

/** Drops undefined fields so they do not override config-file values. */
export function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, field]) => field !== undefined),
  ) as Partial<T>;
}
