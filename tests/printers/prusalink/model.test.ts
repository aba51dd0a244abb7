import { describe, expect, it } from 'vitest';
import { modelFromVersion } from '../../../src/printers/prusalink/model.js';
import { parseBody, versionSchema } from '../../../src/printers/prusalink/status.js';
import { fixture } from './replay.js';

const version = (server: 'buddy' | 'prusa-link', name: string) => {
  const r = parseBody(versionSchema, fixture(server, name));
  if (!r.ok) throw new Error(`${name} did not parse`);
  return r.value;
};

describe('modelFromVersion', () => {
  it('takes the Connect printer type code first (Buddy 6.5.1 / 6.5.3 and newer)', () => {
    expect(modelFromVersion(version('buddy', 'version-6.5.3-mk39s')).model).toBe('MK3.9S');
    expect(modelFromVersion(version('buddy', 'version-6.5.3-mk35s')).model).toBe('MK3.5S');
    expect(modelFromVersion(version('buddy', 'version-6.5.3-core-one')).model).toBe('CORE One');
    expect(modelFromVersion(version('buddy', 'version-6.5.1-core-one-l')).model).toBe('CORE One L');
    const codes: Record<string, string> = {
      '1.3.9': 'MK3.9',
      '1.3.5': 'MK3.5',
      '1.4.0': 'MK4',
      '1.4.1': 'MK4S',
      '2.1.0': 'MINI',
      '3.1.0': 'XL',
      '5.1.0': 'XL',
      '4.1.0': 'other',
      '9.9.9': 'other',
    };
    for (const [printer, model] of Object.entries(codes)) {
      expect(modelFromVersion({ api: '2.0.0', printer }).model, printer).toBe(model);
    }
  });

  it('reads Prusa-Link’s printer type, and asks for a recheck while it says "Unknown printer type"', () => {
    expect(modelFromVersion(version('prusa-link', 'version'))).toEqual({
      model: 'MK3S',
      source: 'prusa_link_type',
      recheck: false,
    });
    expect(modelFromVersion(version('prusa-link', 'version-unknown-type'))).toEqual({
      model: 'other',
      source: 'none',
      recheck: true,
    });
    expect(modelFromVersion({ api: '0.9.0-legacy', original: 'PrusaLink I3MK25S' }).model).toBe('MK2.5S');
    expect(modelFromVersion({ api: '2.0.0', original: 'PrusaLink I3MK25' }).model).toBe('MK2.5');
    expect(modelFromVersion({ api: '2.0.0', original: 'PrusaLink I3MK3' }).model).toBe('MK3');
  });

  it('takes a factory host name only where it names one model; the MK4 build’s names a family: other', () => {
    expect(modelFromVersion(version('buddy', 'version-6.4.0-xl')).model).toBe('XL');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'PrusaXL' }).model).toBe('XL');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'prusa-mini' }).model).toBe('MINI');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'PrusaMINI' }).model).toBe('MINI');
    expect(modelFromVersion({ api: '2.0.0', hostname: 'prusa-core-one' }).model).toBe('CORE One');
    expect(modelFromVersion(version('buddy', 'version-6.4.0-mk4'))).toEqual({
      model: 'other',
      source: 'family',
      family: 'MK4',
      recheck: false,
    });
    expect(modelFromVersion(version('buddy', 'version-4.6.4-mk4'))).toMatchObject({ model: 'other', family: 'MK4' });
    expect(modelFromVersion({ api: '2.0.0', hostname: 'prusa-mk3-5' })).toMatchObject({
      model: 'other',
      family: 'MK3.5',
    });
  });

  it('never reads a model from a host name the user chose', () => {
    for (const hostname of ['mk4s-garage', 'prusa-mk4s', 'PrusaMK3.9', 'garage', 'core-one-l']) {
      expect(modelFromVersion({ api: '2.0.0', hostname }).model, hostname).toBe('other');
    }
  });
});
