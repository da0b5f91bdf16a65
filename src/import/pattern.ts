/**
 * File-name patterns (`--pattern`): a template such as
 * `{start:yyyyMMdd-HHmmss}_{direction:in=1,out=2}_{local}_{remote}_{callId}`
 * compiled once into an anchored regular expression, then matched against a
 * file's path (relative to the import root, without its extension).
 *
 * - `{start:<format>}`: part of the start time, in luxon's format tokens; several
 *   may appear (folders `{start:yyyy}/{start:MM}/{start:dd}/` and the time in the name).
 * - `{direction:<map>}`: `in=1,out=2`; without a map, the digit 0, 1 or 2.
 * - `{local}`, `{localName}`, `{remote}`, `{remoteName}`, `{callId}`: text; `{*}`: ignored.
 * A pattern with `/` matches that many trailing path segments; one without, the file name.
 */
import { DateTime } from 'luxon';

type PatternField = 'local' | 'localName' | 'remote' | 'remoteName' | 'callId';
const TEXT_FIELDS: readonly PatternField[] = ['local', 'localName', 'remote', 'remoteName', 'callId'];

interface PatternMatch {
  /** The start time as written (wall clock, or with an offset when the format carries one). */
  start?: DateTime | undefined;
  direction?: number | undefined;
  fields: Partial<Record<PatternField, string>>;
}

export interface CompiledPattern {
  source: string;
  segments: number;
  /** undefined when the path does not match; throws PatternError for a match whose values do not parse. */
  match(relativePath: string, timezone: string): PatternMatch | undefined;
}

export class PatternError extends Error {}

type Slot =
  | { kind: 'start'; format: string }
  | { kind: 'direction'; map: Map<string, number> }
  | { kind: 'text'; field: PatternField }
  | { kind: 'ignore' };

/** Luxon tokens we can turn into a precise sub-expression; anything else is matched loosely. */
const TOKEN_RES: Record<string, string> = {
  yyyy: '\\d{4}',
  yy: '\\d{2}',
  MM: '\\d{2}',
  M: '\\d{1,2}',
  dd: '\\d{2}',
  d: '\\d{1,2}',
  HH: '\\d{2}',
  H: '\\d{1,2}',
  hh: '\\d{2}',
  h: '\\d{1,2}',
  mm: '\\d{2}',
  m: '\\d{1,2}',
  ss: '\\d{2}',
  s: '\\d{1,2}',
  SSS: '\\d{3}',
  S: '\\d{1,3}',
  a: '(?:AM|PM|am|pm)',
  ZZ: '(?:Z|[+-]\\d{2}:\\d{2})',
  ZZZ: '(?:Z|[+-]\\d{4})',
  MMM: '[A-Za-z]{3}',
  X: '\\d{9,11}',
  x: '\\d{12,14}',
};

const escapeRe = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A luxon format turned into a regex source: known tokens exactly, quoted text literally. */
function formatToRe(format: string): string {
  let out = '';
  let i = 0;
  while (i < format.length) {
    const ch = format[i]!;
    if (ch === "'") {
      const end = format.indexOf("'", i + 1);
      if (end < 0) throw new PatternError(`unclosed quote in date format "${format}"`);
      out += escapeRe(format.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    if (/[A-Za-z]/.test(ch)) {
      let j = i;
      while (format[j] === ch) j++;
      const token = format.slice(i, j);
      out += TOKEN_RES[token] ?? '.+?';
      i = j;
      continue;
    }
    out += escapeRe(ch);
    i++;
  }
  return out;
}

function parseDirectionMap(spec: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const entry of spec.split(',')) {
    const m = /^\s*([^=]+?)\s*=\s*([012])\s*$/.exec(entry);
    if (!m) throw new PatternError(`direction map entry "${entry}" must be text=0|1|2, e.g. in=1,out=2`);
    map.set(m[1]!, Number(m[2]));
  }
  return map;
}

function slotFor(body: string): Slot {
  const colon = body.indexOf(':');
  const name = colon < 0 ? body : body.slice(0, colon);
  const arg = colon < 0 ? undefined : body.slice(colon + 1);
  if (name === '*') return { kind: 'ignore' };
  if (name === 'start') {
    if (!arg) throw new PatternError('{start} needs a date format, e.g. {start:yyyyMMdd-HHmmss}');
    return { kind: 'start', format: arg };
  }
  if (name === 'direction') {
    return {
      kind: 'direction',
      map: arg
        ? parseDirectionMap(arg)
        : new Map([
            ['0', 0],
            ['1', 1],
            ['2', 2],
          ]),
    };
  }
  if ((TEXT_FIELDS as readonly string[]).includes(name) && arg === undefined)
    return { kind: 'text', field: name as PatternField };
  throw new PatternError(`unknown field {${body}}; fields are start, direction, ${TEXT_FIELDS.join(', ')} and *`);
}

export function compilePattern(source: string): CompiledPattern {
  const slots: Slot[] = [];
  let re = '';
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{', i);
    if (open < 0) {
      re += escapeRe(source.slice(i));
      break;
    }
    re += escapeRe(source.slice(i, open));
    const close = source.indexOf('}', open);
    if (close < 0) throw new PatternError(`unclosed "{" in pattern at ${open}`);
    const slot = slotFor(source.slice(open + 1, close));
    slots.push(slot);
    if (slot.kind === 'start') re += `(${formatToRe(slot.format)})`;
    else if (slot.kind === 'direction') re += `(${[...slot.map.keys()].map(escapeRe).join('|')})`;
    else re += slot.kind === 'ignore' ? '([^/]*?)' : '([^/]+?)';
    i = close + 1;
  }
  if (slots.length === 0) throw new PatternError('the pattern names no field');
  const regex = new RegExp(`^${re}$`);
  const segments = source.split('/').length;

  return {
    source,
    segments,
    match(relativePath, timezone) {
      const tail = relativePath.split(/[\\/]/).slice(-segments).join('/');
      const m = regex.exec(tail);
      if (!m) return undefined;
      const result: PatternMatch = { fields: {} };
      const formats: string[] = [];
      const values: string[] = [];
      slots.forEach((slot, k) => {
        const value = m[k + 1]!;
        if (slot.kind === 'start') {
          formats.push(slot.format);
          values.push(value);
        } else if (slot.kind === 'direction') {
          result.direction = slot.map.get(value);
        } else if (slot.kind === 'text') {
          const previous = result.fields[slot.field];
          if (previous !== undefined && previous !== value)
            throw new PatternError(`{${slot.field}} is both "${previous}" and "${value}"`);
          result.fields[slot.field] = value;
        }
      });
      if (formats.length > 0) {
        // Several start fields (folders + name) are parsed together, so each supplies its own units.
        const start = DateTime.fromFormat(values.join('\u0001'), formats.join("'\u0001'"), {
          zone: timezone,
          setZone: true,
        });
        if (!start.isValid)
          throw new PatternError(
            `"${values.join(' ')}" is not a date for "${formats.join(' ')}": ${start.invalidExplanation ?? start.invalidReason}`,
          );
        result.start = start;
      }
      return result;
    },
  };
}
