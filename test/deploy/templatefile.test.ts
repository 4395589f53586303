import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evalExpression, renderTemplate, templateVariables } from './templatefile';

test('interpolation, attributes, indexes and functions', () => {
  const vars = { name: 'p1', cfg: { port: 9115, tags: ['a', 'b'] }, q: 'say "hi"' };
  assert.equal(renderTemplate('id=${name} port=${cfg.port} t=${cfg.tags[1]}', vars), 'id=p1 port=9115 t=b');
  assert.equal(renderTemplate('${jsonencode(q)}', vars), '"say \\"hi\\""');
  assert.equal(renderTemplate('${base64encode(name)}', vars), Buffer.from('p1').toString('base64'));
  assert.equal(renderTemplate('${join(",", cfg.tags)} ${length(cfg.tags)}', vars), 'a,b 2');
  assert.equal(renderTemplate('cost: $${not_a_var} %%{ nope }', vars), 'cost: ${not_a_var} %{ nope }');
});

test('operators and conditionals evaluate like HCL', () => {
  const s = { a: 2, b: 'x', t: true };
  assert.equal(evalExpression('a + 3 * 2', s), 8);
  assert.equal(evalExpression('(a + 3) * 2', s), 10);
  assert.equal(evalExpression('b == "x" && !(a > 2)', s), true);
  assert.equal(evalExpression('t ? "yes" : "no"', s), 'yes');
  assert.equal(evalExpression('a != 2 || b != "x"', s), false);
});

test('for and if directives with strip markers keep the next line\'s indentation', () => {
  const tpl = ['servers:', '%{ for s in list ~}', '  - ${s}', '%{ endfor ~}', '%{ if on ~}', 'on: yes', '%{ else ~}', 'on: no', '%{ endif ~}', 'end', ''].join('\n');
  assert.equal(renderTemplate(tpl, { list: ['a', 'b'], on: false }), 'servers:\n  - a\n  - b\non: no\nend\n');
  assert.equal(renderTemplate(tpl, { list: [], on: true }), 'servers:\non: yes\nend\n');
});

test('without strip markers directives leave their line breaks', () => {
  assert.equal(renderTemplate('%{ for x in xs }[${x}]\n%{ endfor }.', { xs: [1, 2] }), '[1]\n[2]\n.');
});

test('for over a map binds key and value in key order', () => {
  assert.equal(renderTemplate('%{ for k, v in m }${k}=${v};%{ endfor }', { m: { b: 2, a: 1 } }), 'a=1;b=2;');
});

test('left strip marker removes the whitespace before the directive', () => {
  assert.equal(renderTemplate('a  \n%{~ if true ~}\nb\n%{~ endif }', {}), 'ab');
});

test('unknown variables, functions and attributes are errors, as in Terraform', () => {
  assert.throws(() => renderTemplate('${nope}', { yes: 1 }), /unknown variable "nope"/);
  assert.throws(() => renderTemplate('${file("x")}', {}), /unknown function file/);
  assert.throws(() => renderTemplate('${o.missing}', { o: { here: 1 } }), /no attribute "missing"/);
  assert.throws(() => renderTemplate('%{ for x in xs }', { xs: [] }), /endfor/);
  assert.throws(() => renderTemplate('%{ if 1 }x%{ endif }', {}), /must be a bool/);
});

test('templateVariables lists free variables only', () => {
  const vars = templateVariables('${a.b} %{ for x in list }${x.y}${f}%{ endfor }${jsonencode(c)}');
  assert.deepEqual([...vars].sort(), ['a', 'c', 'f', 'list']);
});
