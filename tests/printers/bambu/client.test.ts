import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  classifyError,
  connectOptions,
  errorCode,
  loadBambuCaBundle,
  newClientId,
  REQUESTS,
} from '../../../src/printers/bambu/client.js';

const base = {
  host: '192.168.1.50',
  port: 8883,
  serial: '01S00C123456789',
  accessCode: '12345678',
  clientId: 'printernizer-stats_test',
  connectTimeoutMs: 10_000,
  keepaliveSeconds: 30,
};

describe('Bambu Lab MQTT connection options', () => {
  it('MQTT 3.1.1, clean session, bblp, no automatic reconnect', () => {
    const o = connectOptions({ ...base, tls: true, verifyCertificate: false });
    expect(o).toMatchObject({
      protocol: 'mqtts',
      protocolVersion: 4,
      clean: true,
      username: 'bblp',
      password: '12345678',
      reconnectPeriod: 0,
      rejectUnauthorized: false,
    });
    expect(o).not.toHaveProperty('ca');
    expect(connectOptions({ ...base, tls: false, verifyCertificate: false }).protocol).toBe('mqtt');
  });

  it('verify_certificate: the shipped Bambu Lab CA bundle and the serial as server name', () => {
    const o = connectOptions({ ...base, tls: true, verifyCertificate: true }) as Record<string, unknown>;
    expect(o.rejectUnauthorized).toBe(true);
    expect(o.servername).toBe('01S00C123456789');
    // The bundle goes in through one TLS context that every verifying session shares (the driver tests connect with it).
    expect(o.secureContext).toBeDefined();
    const second = connectOptions({ ...base, serial: '01P00A000000001', tls: true, verifyCertificate: true });
    expect((second as Record<string, unknown>).secureContext).toBe(o.secureContext);
    const custom = connectOptions({ ...base, tls: true, verifyCertificate: true, ca: 'other anchors' });
    expect((custom as Record<string, unknown>).secureContext).not.toBe(o.secureContext);
    const unverified = connectOptions({ ...base, tls: true, verifyCertificate: false }) as Record<string, unknown>;
    expect(unverified.secureContext).not.toBe(o.secureContext);
  });

  it('ships the BBL CA root and the known device intermediates', () => {
    const bundle = loadBambuCaBundle();
    expect(bundle).not.toBeNull();
    const pems = (bundle ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    const subjects = pems.map((pem) => new X509Certificate(pem).subject);
    expect(subjects).toEqual([
      expect.stringContaining('CN=BBL CA'),
      expect.stringContaining('CN=BBL Device CA N7-V2'),
      expect.stringContaining('CN=BBL Device CA O1C2-V2'),
      expect.stringContaining('CN=BBL Device CA N6-V2'),
    ]);
    const root = new X509Certificate(pems[0] as string);
    expect(root.ca).toBe(true);
    expect(root.checkIssued(root)).toBe(true);
  });

  it('makes unique client ids without printer data', () => {
    const a = newClientId();
    expect(a).toMatch(/^printernizer-stats_[0-9a-f]{12}$/);
    expect(newClientId()).not.toBe(a);
  });

  it('sends the requests as the protocol documents them', () => {
    expect(JSON.stringify(REQUESTS.pushall)).toBe(
      '{"pushing":{"sequence_id":"0","command":"pushall","version":1,"push_target":1}}',
    );
    expect(JSON.stringify(REQUESTS.pushingStart)).toBe('{"pushing":{"sequence_id":"0","command":"start"}}');
    expect(JSON.stringify(REQUESTS.getVersion)).toBe('{"info":{"sequence_id":"0","command":"get_version"}}');
  });
});

describe('connection failure classification', () => {
  const err = (message: string, code?: string | number) => Object.assign(new Error(message), { code });
  it.each([
    [err('Connection refused: Bad username or password', 4), 'auth'],
    [err('Connection refused: Not authorized', 5), 'auth'],
    [err('Connection refused: Server unavailable', 3), 'network'],
    [err('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'), 'tls'],
    [err('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'), 'tls'],
    [err("Hostname/IP does not match certificate's altnames: IP: 10.0.0.5", 'ERR_TLS_CERT_ALTNAME_INVALID'), 'tls'],
    [err('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'tls'],
    [err('wrong version number', 'ERR_SSL_WRONG_VERSION_NUMBER'), 'tls'],
    [err('TLS not authorized'), 'tls'],
    [err('Keepalive timeout'), 'timeout'],
    [err('connack timeout'), 'timeout'],
    [err('connect ECONNREFUSED 10.0.0.5:8883', 'ECONNREFUSED'), 'network'],
    [err('read ECONNRESET', 'ECONNRESET'), 'network'],
    ['not an error', 'network'],
  ])('%s → %s', (error, kind) => {
    expect(classifyError(error)).toBe(kind);
  });

  it('names an error by its code, never by its message (which can hold addresses)', () => {
    expect(errorCode(err('connect ECONNREFUSED 10.0.0.5:8883', 'ECONNREFUSED'))).toBe('ECONNREFUSED');
    expect(errorCode(err('Connection refused: Not authorized', 5))).toBe('CONNACK_5');
    expect(errorCode(err('something about 10.0.0.5'))).toBe('unknown');
    expect(errorCode(err('connack timeout'))).toBe('CONNACK_TIMEOUT');
  });
});
