import { describe, expect, it } from 'vitest';
import { modelFromProductName, modelFromSerial, modelFromVersionModules } from '../../../src/printers/bambu/model.js';

describe('Bambu Lab model detection', () => {
  it.each([
    ['00M09A350100123', 'X1C'],
    ['00W00A123456789', 'X1'],
    ['03W09C123456789', 'X1E'],
    ['01S00C123456789', 'P1P'],
    ['01P00A123456789', 'P1S'],
    ['030000000000000', 'A1 mini'],
    ['039000000000000', 'A1'],
    ['22E000000000000', 'P2S'],
    ['094000000000000', 'H2D'],
    ['093000000000000', 'H2S'],
    ['31B000000000000', 'H2C'],
    ['20P000000000000', 'X2D'],
    ['26A000000000000', 'A2L'],
    ['0938BJ611001133', 'H2S'], // the real H2S of the bambuddy capture
    ['MOCK-P1PNOAMS', 'other'],
    ['', 'other'],
  ])('serial %s → %s', (serial, model) => {
    expect(modelFromSerial(serial)).toBe(model);
  });

  it('reads product names with or without the brand', () => {
    expect(modelFromProductName('Bambu Lab X1-Carbon')).toBe('X1C');
    expect(modelFromProductName('Bambu Lab P1P')).toBe('P1P');
    expect(modelFromProductName('Bambu Lab A1 mini')).toBe('A1 mini');
    expect(modelFromProductName('p1s')).toBe('P1S');
    // The real get_version replies of ha-bambulab's MOCK-X2D.json and MOCK-A2L.json.
    expect(modelFromProductName('Bambu Lab X2D')).toBe('X2D');
    expect(modelFromProductName('Bambu Lab A2L')).toBe('A2L');
    expect(modelFromProductName('Bambu Lab H2D Pro')).toBe('H2D');
    expect(modelFromProductName('AMS (1)')).toBeNull();
  });

  it('prefers ota.product_name, then the project code of ota or esp32', () => {
    expect(modelFromVersionModules([{ name: 'ota', product_name: 'Bambu Lab P1S', project_name: 'C11' }])).toBe('P1S');
    expect(modelFromVersionModules([{ name: 'ota', project_name: 'N2S' }])).toBe('A1');
    expect(modelFromVersionModules([{ name: 'ota' }, { name: 'esp32', project_name: 'C12' }])).toBe('P1S');
    expect(modelFromVersionModules([{ name: 'ams/0', product_name: 'Bambu Lab X1-Carbon' }])).toBeNull();
    expect(modelFromVersionModules([{ name: 'ota', product_name: 42 }])).toBeNull();
    expect(modelFromVersionModules([])).toBeNull();
  });
});
