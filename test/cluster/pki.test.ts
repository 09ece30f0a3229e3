import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPki, leafExtensions, subject } from '../../lab/cluster/pki.js';

describe('leafExtensions', () => {
  test('server cert: serverAuth and SANs', () => {
    const ext = leafExtensions({ commonName: 'x', dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' });
    expect(ext).toContain('extendedKeyUsage = serverAuth');
    expect(ext).toContain('subjectAltName = DNS:localhost, IP:127.0.0.1');
    expect(ext).toContain('CA:FALSE');
  });
  test('client cert: clientAuth, no SAN line', () => {
    const ext = leafExtensions({ commonName: 'x', usage: 'client' });
    expect(ext).toContain('extendedKeyUsage = clientAuth');
    expect(ext).not.toContain('subjectAltName');
  });
});

describe('subject', () => {
  test('groups as O=, name as CN=', () => {
    expect(subject({ commonName: 'admin', organizations: ['system:masters', 'g2'] })).toBe('/O=system:masters/O=g2/CN=admin');
    expect(subject({ commonName: 'solo' })).toBe('/CN=solo');
  });
  test('reserved characters are refused', () => {
    expect(() => subject({ commonName: 'a/b' })).toThrow(/reserved/);
    expect(() => subject({ commonName: 'a', organizations: ['x=y'] })).toThrow(/reserved/);
  });
});

describe('createPki (openssl)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vipfarm-pki-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('issues a CA, a serving cert for 127.0.0.1 and an admin client cert in system:masters', () => {
    const pki = createPki(dir, ['127.0.0.1']);
    const ca = new X509Certificate(readFileSync(pki.caCert));
    const server = new X509Certificate(readFileSync(pki.serverCert));
    const admin = new X509Certificate(readFileSync(pki.adminCert));
    expect(ca.ca).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(admin.verify(ca.publicKey)).toBe(true);
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('kubernetes.default.svc')).toBe('kubernetes.default.svc');
    expect(server.checkIP('127.0.0.2')).toBeUndefined();
    expect(admin.subject).toContain('O=system:masters');
    expect(admin.subject).toContain('CN=vipfarm-admin');
    expect(admin.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
    // openssl agrees that the chain verifies
    const out = execFileSync('openssl', ['verify', '-CAfile', pki.caCert, pki.serverCert, pki.adminCert], { encoding: 'utf8' });
    expect(out).toMatch(/apiserver.crt: OK[\s\S]*admin.crt: OK/);
    expect(readFileSync(pki.saPub, 'utf8')).toContain('BEGIN PUBLIC KEY');
  });
});
