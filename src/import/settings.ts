/**
 * The metadata settings shared by `import`, `watch` and WATCH_*: a pattern,
 * defaults (a JSON object) and a time zone, checked together so that every
 * problem is listed at once (exit code 2 for the CLI).
 */
import { IANAZone } from 'luxon';
import { compilePattern, PatternError } from './pattern.js';
import type { MetadataSources } from './sources.js';
import type { MetadataLayer } from './metadata.js';

export const SIDECAR_MODES = ['optional', 'required'] as const;
export type SidecarMode = (typeof SIDECAR_MODES)[number];

export interface RawDoorSettings {
  pattern?: string | undefined;
  defaults?: string | undefined;
  timezone?: string | undefined;
}

function parseDefaults(text: string): MetadataLayer {
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error('must be a JSON object (jsondata fields)');
  return value as MetadataLayer;
}

/** Problems with the settings, each prefixed with the name it was given by (`WATCH_`, `--`). */
export function fileDoorProblems(raw: RawDoorSettings, prefix: string): string[] {
  const name = (n: string): string => (prefix === '--' ? `--${n}` : `${prefix}${n.toUpperCase()}`);
  const problems: string[] = [];
  if (raw.pattern !== undefined) {
    try {
      compilePattern(raw.pattern);
    } catch (error) {
      if (!(error instanceof PatternError)) throw error;
      problems.push(`${name('pattern')}: ${error.message}`);
    }
  }
  if (raw.defaults !== undefined) {
    try {
      parseDefaults(raw.defaults);
    } catch (error) {
      problems.push(
        `${name('defaults')}: ${error instanceof SyntaxError ? 'not valid JSON' : (error as Error).message}`,
      );
    }
  }
  if (raw.timezone !== undefined && !IANAZone.isValidZone(raw.timezone)) {
    problems.push(`${name('timezone')}: "${raw.timezone}" is not an IANA time zone (e.g. UTC, Europe/Rome)`);
  }
  return problems;
}

/** The sources, from settings already checked by fileDoorProblems(). */
export function metadataSources(raw: RawDoorSettings, maxDurationSeconds: number): MetadataSources {
  return {
    pattern: raw.pattern === undefined ? undefined : compilePattern(raw.pattern),
    defaults: raw.defaults === undefined ? undefined : parseDefaults(raw.defaults),
    timezone: raw.timezone ?? 'UTC',
    maxOffsetMs: maxDurationSeconds * 1000,
  };
}
