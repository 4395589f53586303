import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { AdminServiceDefinition } from '@probemesh/proto';
import { addStandardServices, ADMIN_SERVICE_NAME } from './grpc-extras';

// Clients built only from the public protos the packages ship, as grpcurl would be.
const reflectionProto = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto', 'grpc', 'reflection', 'v1alpha', 'reflection.proto');
const healthProto = join(dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');
const pkgs = grpc.loadPackageDefinition(loadSync([reflectionProto, healthProto], { keepCase: true, defaults: true, enums: String })) as any; // eslint-disable-line @typescript-eslint/no-explicit-any

let server: grpc.Server;
let addr: string;
let standard: ReturnType<typeof addStandardServices>;
before(async () => {
  server = new grpc.Server();
  server.addService(AdminServiceDefinition, Object.fromEntries(Object.keys(AdminServiceDefinition).map((m) => [m, (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {})])));
  standard = addStandardServices(server);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  addr = `127.0.0.1:${port}`;
});
after(() => server.forceShutdown());

function reflect(request: object): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const client = new pkgs.grpc.reflection.v1alpha.ServerReflection(addr, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (d: unknown) => {
      resolve(d);
      call.end();
      client.close();
    });
    call.on('error', reject);
    call.write(request);
  });
}

test('reflection lists the AdminService and describes its file', async () => {
  const listed = await reflect({ list_services: '' });
  const names = listed.list_services_response.service.map((s: { name: string }) => s.name);
  assert.ok(names.includes(ADMIN_SERVICE_NAME), `listed: ${names.join(', ')}`);
  const desc = await reflect({ file_containing_symbol: ADMIN_SERVICE_NAME });
  const files: Buffer[] = desc.file_descriptor_response.file_descriptor_proto;
  assert.ok(files.length >= 1);
  assert.ok(files.some((f) => f.toString('latin1').includes('AddTarget')), 'the descriptor carries the AdminService methods');
});

test('health check answers SERVING, then NOT_SERVING when told', async () => {
  const client = new pkgs.grpc.health.v1.Health(addr, grpc.credentials.createInsecure());
  const check = (service: string) => new Promise<any>((res, rej) => client.Check({ service }, (e: Error | null, r: unknown) => (e ? rej(e) : res(r)))); // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal((await check(ADMIN_SERVICE_NAME)).status, 'SERVING');
  assert.equal((await check('')).status, 'SERVING');
  standard.setStatus('NOT_SERVING');
  assert.equal((await check(ADMIN_SERVICE_NAME)).status, 'NOT_SERVING');
  await assert.rejects(check('no.such.Service'), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND);
  client.close();
});
