// Certificates for one test control plane, made with the openssl CLI (node:crypto cannot
// issue X.509 certificates). EC P-256 keys: fast to generate, accepted by Go's TLS.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  /** Service-account token signing key (private) and its public half. */
  saKey: string;
  saPub: string;
}

export interface CertRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ips?: string[];
  usage: 'server' | 'client';
}

/** The openssl x509v3 extension file for a leaf certificate (pure, tested). */
export function leafExtensions(req: CertRequest): string {
  const lines = [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${req.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
  ];
  const sans = [...(req.dnsNames ?? []).map((d) => `DNS:${d}`), ...(req.ips ?? []).map((ip) => `IP:${ip}`)];
  if (sans.length > 0) lines.push(`subjectAltName = ${sans.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** openssl -subj string; O= may repeat (one group each). */
export function subject(req: Pick<CertRequest, 'commonName' | 'organizations'>): string {
  const bad = /[/=+,\\]/;
  for (const part of [req.commonName, ...(req.organizations ?? [])]) {
    if (bad.test(part)) throw new Error(`certificate subject part ${JSON.stringify(part)} has a reserved character`);
  }
  return (req.organizations ?? []).map((o) => `/O=${o}`).join('') + `/CN=${req.commonName}`;
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? 'openssl not found: apt-get install openssl (scripts/setup.sh does)' : `openssl ${args[0]} failed: ${stderr}`, {
      cause: err,
    });
  }
}

function ecKey(file: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

export function issue(dir: string, name: string, req: CertRequest, caCert: string, caKey: string): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  const ext = path.join(dir, `${name}.ext`);
  ecKey(key);
  writeFileSync(ext, leafExtensions(req));
  openssl(['req', '-new', '-key', key, '-subj', subject(req), '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '7', '-sha256', '-extfile', ext, '-out', cert]);
  return { cert, key };
}

/** CA, apiserver serving cert, admin client cert (system:masters), service-account keys. */
export function createPki(dir: string, serverIps: string[]): Pki {
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.crt');
  ecKey(caKey);
  openssl(['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=vipfarm-test-ca', '-days', '7', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', caCert]);
  const server = issue(dir, 'apiserver', {
    commonName: 'kube-apiserver',
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    ips: serverIps,
    usage: 'server',
  }, caCert, caKey);
  const admin = issue(dir, 'admin', { commonName: 'vipfarm-admin', organizations: ['system:masters'], usage: 'client' }, caCert, caKey);
  const saKey = path.join(dir, 'sa.key');
  const saPub = path.join(dir, 'sa.pub');
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', saKey]);
  openssl(['pkey', '-in', saKey, '-pubout', '-out', saPub]);
  return { dir, caCert, caKey, serverCert: server.cert, serverKey: server.key, adminCert: admin.cert, adminKey: admin.key, saKey, saPub };
}
