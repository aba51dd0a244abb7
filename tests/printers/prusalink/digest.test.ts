import { describe, expect, it } from 'vitest';
import {
  DigestAuth,
  digestResponse,
  md5,
  parseAuthenticate,
  parseDigestChallenge,
} from '../../../src/printers/prusalink/digest.js';

/** Split an Authorization value into its parameters (test-side, independent of the code under test). */
function params(header: string): Record<string, string> {
  expect(header.startsWith('Digest ')).toBe(true);
  const out: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]+))/g)) out[m[1]!] = m[2] ?? m[3]!;
  return out;
}

describe('digest response', () => {
  it('matches the RFC 2617 qop=auth example', () => {
    expect(
      digestResponse({
        username: 'Mufasa',
        password: 'Circle Of Life',
        realm: 'testrealm@host.com',
        method: 'GET',
        uri: '/dir/index.html',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        qop: 'auth',
        nc: '00000001',
        cnonce: '0a4f113b',
      }),
    ).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('computes RFC 2069 (no qop) as MD5(HA1:nonce:HA2)', () => {
    const ha1 = md5('maker:Printer API:secret');
    const ha2 = md5('GET:/api/v1/status');
    expect(
      digestResponse({
        username: 'maker',
        password: 'secret',
        realm: 'Printer API',
        method: 'get',
        uri: '/api/v1/status',
        nonce: '33e1737e000065bd',
      }),
    ).toBe(md5(`${ha1}:33e1737e000065bd:${ha2}`));
  });

  it('computes MD5-sess with the cnonce in HA1', () => {
    const ha1 = md5(`${md5('maker:Administrator:pw')}:n1:c1`);
    const ha2 = md5('GET:/api/version');
    expect(
      digestResponse({
        username: 'maker',
        password: 'pw',
        realm: 'Administrator',
        method: 'GET',
        uri: '/api/version',
        nonce: 'n1',
        qop: 'auth',
        algorithm: 'MD5-sess',
        nc: '00000001',
        cnonce: 'c1',
      }),
    ).toBe(md5(`${ha1}:n1:00000001:c1:auth:${ha2}`));
  });
});

describe('WWW-Authenticate parsing', () => {
  it('reads the Buddy challenge (Prusa-Link-Web #507)', () => {
    expect(parseDigestChallenge('Digest realm="Printer API", nonce="33e1737e000065bd", stale=false')).toEqual({
      realm: 'Printer API',
      nonce: '33e1737e000065bd',
      qop: null,
      algorithm: null,
      opaque: null,
      stale: false,
    });
    expect(parseDigestChallenge('Digest realm="Printer API", nonce="0000000100000002", stale=true')?.stale).toBe(true);
  });

  it('reads the Prusa-Link challenge (HA core #149196) and a Python-style stale=True', () => {
    const c = parseDigestChallenge(
      'Digest realm="Administrator",qop="auth",algorithm="MD5-sess",nonce="abc",opaque="def",stale=True',
    );
    expect(c).toEqual({
      realm: 'Administrator',
      nonce: 'abc',
      qop: 'auth',
      algorithm: 'MD5-sess',
      opaque: 'def',
      stale: true,
    });
  });

  it('handles quoted commas, escapes and several challenges in one header', () => {
    const all = parseAuthenticate(
      'ApiKey realm="Printer API", Digest realm="a, \\"b\\"", qop="auth,auth-int", nonce=x',
    );
    expect(all.map((c) => c.scheme)).toEqual(['apikey', 'digest']);
    expect(all[1]!.params).toEqual({ realm: 'a, "b"', qop: 'auth,auth-int', nonce: 'x' });
    expect(parseDigestChallenge('Digest realm="r", qop="auth,auth-int", nonce="n"')?.qop).toBe('auth');
  });

  it('refuses what it cannot answer', () => {
    expect(parseDigestChallenge(null)).toBeNull();
    expect(parseDigestChallenge('ApiKey realm="Printer API"')).toBeNull();
    expect(parseDigestChallenge('Basic realm="x"')).toBeNull();
    expect(parseDigestChallenge('Digest realm="x"')).toBeNull(); // no nonce
    expect(parseDigestChallenge('Digest realm="x", nonce="n", qop="auth-int"')).toBeNull();
    expect(parseDigestChallenge('Digest realm="x", nonce="n", algorithm=SHA-256')).toBeNull();
    expect(parseAuthenticate('=,,"" ,Digest')).toEqual([{ scheme: 'digest', params: {} }]);
  });
});

describe('DigestAuth', () => {
  it('answers nothing before a challenge', () => {
    expect(new DigestAuth('maker', 'pw').authorization('GET', '/api/v1/status')).toBeNull();
  });

  it('sends no algorithm, qop, nc or opaque to Buddy (RFC 2069)', () => {
    const auth = new DigestAuth('maker', 'pw');
    auth.accept(parseDigestChallenge('Digest realm="Printer API", nonce="33e1737e000065bd", stale=false')!);
    const header = auth.authorization('GET', '/api/v1/status')!;
    const p = params(header);
    expect(Object.keys(p).sort()).toEqual(['nonce', 'realm', 'response', 'uri', 'username']);
    expect(header).not.toMatch(/algorithm/i);
    expect(p['response']).toBe(
      digestResponse({
        username: 'maker',
        password: 'pw',
        realm: 'Printer API',
        method: 'GET',
        uri: '/api/v1/status',
        nonce: '33e1737e000065bd',
      }),
    );
  });

  it('sends qop, nc, cnonce, opaque and the algorithm to Prusa-Link, counting nc per nonce', () => {
    let n = 0;
    const auth = new DigestAuth('maker', 'pw', () => `c${++n}`);
    auth.accept(
      parseDigestChallenge('Digest realm="Administrator",qop="auth",algorithm="MD5-sess",nonce="n1",opaque="o"')!,
    );
    const first = params(auth.authorization('GET', '/api/version')!);
    const second = params(auth.authorization('GET', '/api/v1/status')!);
    expect(first).toMatchObject({ qop: 'auth', nc: '00000001', cnonce: 'c1', opaque: 'o', algorithm: 'MD5-sess' });
    expect(second).toMatchObject({ nc: '00000002', cnonce: 'c2' });
    expect(second['response']).toBe(
      digestResponse({
        username: 'maker',
        password: 'pw',
        realm: 'Administrator',
        method: 'GET',
        uri: '/api/v1/status',
        nonce: 'n1',
        qop: 'auth',
        algorithm: 'MD5-sess',
        nc: '00000002',
        cnonce: 'c2',
      }),
    );
    auth.accept(
      parseDigestChallenge('Digest realm="Administrator",qop="auth",algorithm="MD5-sess",nonce="n2",opaque="o"')!,
    );
    expect(params(auth.authorization('GET', '/api/version')!)['nc']).toBe('00000001');
    auth.reset();
    expect(auth.hasChallenge).toBe(false);
  });

  it('quotes the user name safely', () => {
    const auth = new DigestAuth('ma"ker', 'pw');
    auth.accept({ realm: 'r', nonce: 'n', qop: null, algorithm: null, opaque: null, stale: false });
    expect(auth.authorization('GET', '/')).toContain('username="ma\\"ker"');
  });
});
