'use strict';
/*
 * Runs the LuCI views of luci-app-aliddns in node against small recording fakes
 * of LuCI's client API (no browser, no router):  node --test openwrt/luci-app-aliddns/tests/
 *
 * A view file is loaded as LuCI's loader does it: the source becomes the body
 * of a function whose parameters are the modules named by its 'require lines,
 * with _, E and L as globals. The fakes record what the view asks for, so the
 * tests check what the page does with `aliddns status --json` answers (running,
 * failed, missing binary), which commands it runs, which UCI options the form
 * edits (every one must be a key src/config.rs reads, with the same range) and
 * that its validators accept and refuse what the binary does.
 */
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const APP = path.join(__dirname, '..');
const ROOT = path.join(APP, '..', '..');
const VIEWS = path.join(APP, 'htdocs', 'luci-static', 'resources', 'view', 'aliddns');

/* ---- a tiny DOM: enough for E(), dom.content() and reading the result back.
 * Like LuCI's dom.append(), a bare string becomes innerHTML (kept as Html, so a
 * test can tell) and the strings of an array become text nodes. */
class Html {
	constructor(s) { this.html = s; }
}

class Node {
	constructor(tag, attrs) { this.tag = tag; this.attrs = attrs || {}; this.children = []; }
	append(c) {
		if (c == null) return;
		if (Array.isArray(c)) return c.forEach((x) => this.children.push(x instanceof Node ? x : String(x)));
		this.children.push(c instanceof Node ? c : new Html(String(c)));
	}
	get text() {
		return this.children.map((c) => (c instanceof Node ? c.text : c instanceof Html ? c.html : c)).join('');
	}
	htmlParts(out = []) {
		for (const c of this.children)
			if (c instanceof Html) out.push(c.html);
			else if (c instanceof Node) c.htmlParts(out);
		return out;
	}
	findAll(pred, out = []) {
		for (const c of this.children)
			if (c instanceof Node) { if (pred(c)) out.push(c); c.findAll(pred, out); }
		return out;
	}
}

function E(tag, attrs, children) {
	if (Array.isArray(attrs) || typeof attrs !== 'object' || attrs === null || attrs instanceof Node)
		children = attrs, attrs = {};
	const n = new Node(Array.isArray(tag) ? '#fragment' : tag, attrs);
	n.append(children);
	return n;
}

/* LuCI's String.prototype.format, for the conversions the views use. */
function format(fmt, args) {
	let i = 0;
	return fmt.replace(/%(0?)(\d*)([sdh%])/g, (m, zero, width, conv) => {
		if (conv === '%') return '%';
		let v = args[i++];
		v = conv === 'd' ? String(Math.floor(+v || 0)) : String(v);
		if (conv === 'h')
			v = v.replace(/&/g, '&#38;').replace(/"/g, '&#34;').replace(/'/g, '&#39;').replace(/</g, '&#60;').replace(/>/g, '&#62;');
		while (width && v.length < +width) v = (zero ? '0' : ' ') + v;
		return v;
	});
}

function loadView(file, env) {
	const src = fs.readFileSync(path.join(VIEWS, file), 'utf8');
	const requires = [...src.matchAll(/^'require ([\w.]+)(?: as (\w+))?';$/gm)].map((m) => m[2] || m[1]);
	const modules = requires.map((name) => {
		if (!(name in env.modules)) throw new Error(file + ' requires ' + name + ', which the fakes lack');
		return env.modules[name];
	});
	return new Function(...requires, src)(...modules);
}

/* ---- fakes of LuCI's modules, recording what the view does */
function makeEnv({ execResults = {}, devices = {}, config = {} } = {}) {
	const env = { execs: [], polls: [], notifications: [], sections: [], timers: [] };

	class Option {
		constructor(section, type, name, title, descr) {
			Object.assign(this, { section, type, option: name, title, description: descr, deps: [], keylist: [] });
			this.map = section.map;
		}
		value(k, v) { this.keylist.push([k, v]); }
		depends(k, v) { this.deps.push([k, v]); }
	}
	class Section {
		constructor(map, type, args) {
			Object.assign(this, { map, type, args, options: [], tabs: [] });
		}
		tab(name, title) { this.tabs.push(name); }
		taboption(tab, cls, name, title, descr) { return this.option(cls, name, title, descr, tab); }
		option(cls, name, title, descr, tab) {
			const o = new Option(this, cls, name, title, descr);
			o.tab = tab;
			this.options.push(o);
			return o;
		}
	}
	const data = {
		get: (conf, sid, opt) => (config[sid] || {})[opt],
		set: (conf, sid, opt, v) => { (config[sid] = config[sid] || {})[opt] = v; },
		unset: (conf, sid, opt) => { if (config[sid]) delete config[sid][opt]; },
	};
	const form = {
		Map: class {
			constructor(conf, title) { this.config = conf; this.title = title; this.data = data; }
			section(cls, ...args) { const s = new Section(this, cls, args); env.sections.push(s); return s; }
			render() { return Promise.resolve(E('div', { 'class': 'cbi-map' }, 'map')); }
		},
	};
	for (const name of ['NamedSection', 'GridSection', 'TableSection', 'TypedSection', 'Flag', 'Value',
		'ListValue', 'DynamicList', 'DummyValue'])
		form[name] = name;

	env.modules = {
		view: { extend: (proto) => proto },
		dom: { content: (node, children) => { node.children = []; node.append(children); return node; } },
		form,
		fs: {
			exec: (cmd, args) => {
				const line = [cmd].concat(args || []).join(' ');
				env.execs.push(line);
				const r = execResults[line];
				if (r === undefined || r instanceof Error) return Promise.reject(r || new Error('Not found'));
				return Promise.resolve(r);
			},
		},
		poll: { add: (fn, interval) => env.polls.push({ fn, interval }) },
		rpc: { declare: (spec) => () => (spec.object === 'luci-rpc' && spec.method === 'getNetworkDevices'
			? Promise.resolve(devices) : Promise.reject(new Error('unexpected rpc ' + spec.object))) },
		uci: { load: () => Promise.resolve(), get: (conf, sid, opt) => (opt ? data.get(conf, sid, opt) : config[sid]) },
		ui: {
			createHandlerFn: (self, fn) => (typeof fn === 'string' ? self[fn].bind(self) : fn.bind(self)),
			addNotification: (title, body, kind) => env.notifications.push({ body, kind }),
		},
	};
	return env;
}

global._ = (s) => s;
global.E = E;
global.L = {
	resolveDefault: (p, d) => Promise.resolve(p).catch(() => d),
	bind: (fn, self, ...args) => fn.bind(self, ...args),
};
global.window = { setTimeout: () => 0 };
Object.defineProperty(String.prototype, 'format', {
	value: function(...args) { return format(String(this), args); }, configurable: true
});

const STATUS = '/usr/bin/aliddns -c /etc/config/aliddns status --json';
const TRIGGER = '/etc/init.d/aliddns trigger';
const LOGREAD = '/sbin/logread -e aliddns';

/* The JSON contract of `aliddns status --json` (src/status.rs). */
const SAMPLE = {
	config: '/etc/config/aliddns', state_file: '/var/run/aliddns/state', running: true,
	records: [
		{ section: 'home', name: 'home.example.com', domain: 'example.com', rr: 'home', type: 'A', line: 'default',
		  enabled: true, value: '203.0.113.7', record_id: '1000001', changed_at: 1764300000, checked_at: 1764300600,
		  result: 'updated', error: null },
		{ section: 'cfg02', name: 'nas.example.com', domain: 'example.com', rr: 'nas', type: 'AAAA', line: 'telecom',
		  enabled: true, value: null, record_id: null, changed_at: null, checked_at: 1764300600,
		  result: 'failed', error: 'InvalidAccessKeyId.NotFound: Specified access key is not found.' },
		{ section: 'cfg03', name: 'old.example.com', domain: 'example.com', rr: 'old', type: 'A', line: 'default',
		  enabled: false, value: null, record_id: null, changed_at: null, checked_at: null, result: 'disabled', error: null },
	],
};

async function renderOverview(opts) {
	const env = makeEnv(opts);
	const view = loadView('overview.js', env);
	const data = await view.load();
	const page = await view.render(data);
	return { env, view, page };
}

function rowsOf(page) {
	const table = page.findAll((n) => n.attrs.id === 'aliddns-status-table')[0];
	return table.findAll((n) => n.tag === 'tr').slice(1);
}

test('status table: one row per record, red error text where the last pass failed', async () => {
	const { env, page } = await renderOverview({ execResults: { [STATUS]: { code: 0, stdout: JSON.stringify(SAMPLE), stderr: '' } } });
	assert.deepStrictEqual(env.execs, [STATUS]);
	const rows = rowsOf(page);
	assert.strictEqual(rows.length, 3);
	const cells = rows[0].findAll((n) => n.tag === 'td').map((c) => c.text);
	assert.strictEqual(cells[0], 'home.example.com');
	assert.deepStrictEqual(cells.slice(1, 4), ['A', 'Default', '203.0.113.7']);
	assert.match(cells[4], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
	assert.match(cells[5], /^Updated/);
	const err = rows[1].findAll((n) => n.attrs['class'] === 'aliddns-error');
	assert.strictEqual(err.length, 1);
	assert.match(err[0].attrs.style, /color:#c00/);
	assert.strictEqual(err[0].text, SAMPLE.records[1].error);
	assert.match(rows[1].text, /China Telecom/);
	assert.match(rows[2].text, /\(disabled\)/);
	assert.strictEqual(rows[0].findAll((n) => n.attrs['class'] === 'aliddns-error').length, 0);
	assert.match(page.findAll((n) => n.attrs.id === 'aliddns-running')[0].text, /^running$/);
});

test('before the first pass: as `aliddns status --json` prints it', async () => {
	/* Printed by the binary (src/status.rs) for one record never updated yet and one disabled. */
	const out = '{"config":"/etc/config/aliddns","records":[{"changed_at":null,"checked_at":null,"domain":"example.com",' +
		'"enabled":true,"error":null,"line":"default","name":"home.example.com","record_id":null,"result":"never",' +
		'"rr":"home","section":"home","type":"A","value":null},{"changed_at":null,"checked_at":null,' +
		'"domain":"example.com","enabled":false,"error":null,"line":"default","name":"nas.example.com",' +
		'"record_id":null,"result":"disabled","rr":"nas","section":"","type":"AAAA","value":null}],' +
		'"running":false,"state_file":"/var/run/aliddns/state"}\n';
	const { page } = await renderOverview({ execResults: { [STATUS]: { code: 0, stdout: out, stderr: '' } } });
	const rows = rowsOf(page).map((r) => r.findAll((n) => n.tag === 'td').map((c) => c.text));
	assert.deepStrictEqual(rows, [
		['home.example.com', 'A', 'Default', '-', '-', 'Not checked yet'],
		['nas.example.com (disabled)', 'AAAA', 'Default', '-', '-', 'Disabled'],
	]);
	assert.strictEqual(page.findAll((n) => n.attrs.id === 'aliddns-running')[0].text, 'not running');
});

test('text from the router never becomes HTML', async () => {
	const evil = '<img src=x onerror=alert(1)>';
	const bad = JSON.parse(JSON.stringify(SAMPLE));
	bad.records[1].error = evil;
	bad.records[1].name = evil;
	bad.records[0].value = evil;
	bad.records[0].line = evil;
	bad.records[0].result = evil;
	let r = await renderOverview({ execResults: { [STATUS]: { code: 0, stdout: JSON.stringify(bad), stderr: '' } } });
	assert.ok(r.page.text.includes(evil));
	assert.deepStrictEqual(r.page.htmlParts().filter((h) => h.includes('<')), []);
	r = await renderOverview({ execResults: { [STATUS]: { code: 2, stdout: '', stderr: evil } } });
	assert.deepStrictEqual(r.page.htmlParts().filter((h) => h.includes('<')), []);
	r.env.modules.fs.exec = () => Promise.resolve({ code: 1, stdout: '', stderr: evil });
	await r.view.handleTrigger();
	assert.deepStrictEqual(r.env.notifications[0].body.htmlParts().filter((h) => h.includes('<')), []);
	const env = makeEnv({ execResults: { [LOGREAD]: { code: 0, stdout: evil + '\n', stderr: '' } } });
	const log = loadView('log.js', env);
	const page = log.render(await log.load());
	assert.ok(page.text.includes(evil));
	assert.deepStrictEqual(page.htmlParts().filter((h) => h.includes('<')), []);
	const { byType } = await formOptions();
	const cfg = byType.record.map.data;
	cfg.set('aliddns', 'r1', 'interface', evil);
	cfg.set('aliddns', 'r1', 'line', evil);
	for (const name of ['interface', 'line']) {
		const o = byType.record.options.find((x) => x.option === name);
		o.cfgvalue = (sid) => cfg.get('aliddns', sid, name);
		assert.ok(!o.textvalue('r1').includes('<'), name);
	}
});

test('the page polls the status and the map sits beside the status box', async () => {
	const { env, page } = await renderOverview({ execResults: { [STATUS]: { code: 0, stdout: JSON.stringify(SAMPLE), stderr: '' } } });
	assert.strictEqual(env.polls.length, 1);
	const top = page.children.filter((c) => c instanceof Node);
	assert.ok(top.some((n) => n.attrs.id === 'aliddns-status'));
	assert.ok(top.some((n) => n.attrs['class'] === 'cbi-map'), 'the map element is a direct child, not wrapped with the status');
	const changed = JSON.parse(JSON.stringify(SAMPLE));
	changed.records[1].result = 'updated';
	changed.records[1].error = null;
	changed.running = false;
	env.modules.fs.exec = () => Promise.resolve({ code: 0, stdout: JSON.stringify(changed), stderr: '' });
	await env.polls[0].fn();
	assert.strictEqual(rowsOf(page)[1].findAll((n) => n.attrs['class'] === 'aliddns-error').length, 0);
	assert.match(page.findAll((n) => n.attrs.id === 'aliddns-running')[0].text, /not running/);
});

test('a missing binary or denied call still renders, with a warning', async () => {
	const { page } = await renderOverview({ execResults: {} });
	assert.match(page.findAll((n) => n.attrs.id === 'aliddns-status-error')[0].text, /Could not run \/usr\/bin\/aliddns/);
	assert.match(rowsOf(page)[0].text, /No record is configured yet/);
});

test('a failing status command shows its message', async () => {
	const stderr = 'aliddns: /etc/config/aliddns:12: type: \'MX\' is not supported\n';
	const { page } = await renderOverview({ execResults: { [STATUS]: { code: 2, stdout: '', stderr } } });
	assert.strictEqual(page.findAll((n) => n.attrs.id === 'aliddns-status-error')[0].text, stderr.trim());
});

test('Update now runs the init script\'s trigger, then reads the status again', async () => {
	const { env, view } = await renderOverview({ execResults: {
		[STATUS]: { code: 0, stdout: JSON.stringify(SAMPLE), stderr: '' },
		[TRIGGER]: { code: 0, stdout: '', stderr: '' },
	} });
	await view.handleTrigger();
	assert.deepStrictEqual(env.execs, [STATUS, TRIGGER, STATUS]);
	assert.strictEqual(env.notifications.length, 0);
	env.modules.fs.exec = (cmd, args) => Promise.resolve(cmd === '/etc/init.d/aliddns'
		? { code: 1, stdout: '', stderr: 'boom' } : { code: 0, stdout: JSON.stringify(SAMPLE), stderr: '' });
	await view.handleTrigger();
	assert.strictEqual(env.notifications.length, 1);
	assert.match(env.notifications[0].body.text, /failed \(exit code 1\): boom/);
});

/* ---- the form against src/config.rs */
function configKeys() {
	const rs = fs.readFileSync(path.join(ROOT, 'src', 'config.rs'), 'utf8');
	const list = (name) => {
		const m = new RegExp('const ' + name + ': &\\[&str\\] = &\\[([^\\]]*)\\]').exec(rs);
		return [...m[1].matchAll(/"(\w+)"/g)].map((x) => x[1]);
	};
	const ranges = {};
	for (const m of rs.matchAll(/\.number\("(\w+)", ([\d_ *]+), ([\d_ *]+)\)/g)) {
		const num = (e) => e.replace(/_/g, '').split('*').reduce((a, b) => a * +b.trim(), 1);
		ranges[m[1]] = [num(m[2]), num(m[3])];
	}
	return { global: list('GLOBAL_KEYS'), record: list('RECORD_KEYS'), httpdns: list('HTTPDNS_KEYS'), ranges };
}

async function formOptions() {
	const { env } = await renderOverview({
		execResults: {},
		devices: { 'lo': { up: true }, 'eth0': { up: true }, 'pppoe-wan': { up: false } },
		config: { global: { enabled: '1' }, r1: { domain: 'example.com', sub_domain: 'www', type: 'aaaa' } },
	});
	const byType = {};
	for (const s of env.sections) {
		const uciType = s.type === 'GridSection' ? s.args[0] : s.args[1];
		byType[uciType] = s;
	}
	return { env, byType };
}

test('every form option is a key the binary reads, with the binary\'s range', async () => {
	const keys = configKeys();
	const { byType } = await formOptions();
	assert.deepStrictEqual(Object.keys(byType).sort(), ['global', 'httpdns', 'record']);
	assert.strictEqual(byType.global.args[0], 'global');
	assert.strictEqual(byType.httpdns.args[0], 'httpdns');
	for (const [type, s] of Object.entries(byType)) {
		for (const o of s.options) {
			assert.ok(keys[type].includes(o.option), type + '.' + o.option + ' is not read by src/config.rs');
			const r = keys.ranges[o.option];
			if (o.datatype && o.datatype.startsWith('range('))
				assert.strictEqual(o.datatype, 'range(' + r[0] + ',' + r[1] + ')', type + '.' + o.option);
			else if (r)
				assert.fail(type + '.' + o.option + ' has no range check; src/config.rs takes ' + r);
		}
	}
	const names = (s) => s.options.map((o) => o.option);
	for (const want of ['enabled', 'access_id', 'access_key', 'interval', 'verify_interval', 'ip_urls', 'ipv6_urls', 'timeout'])
		assert.ok(names(byType.global).includes(want), 'global.' + want);
	for (const want of ['domain', 'rr', 'type', 'interface', 'line', 'ttl', 'create', 'ipv6_suffix', 'enabled'])
		assert.ok(names(byType.record).includes(want), 'record.' + want);
	for (const want of ['enabled', 'listen', 'secret', 'domains', 'max_skew', 'tls_cert', 'tls_key'])
		assert.ok(names(byType.httpdns).includes(want), 'httpdns.' + want);
	const opt = (type, name) => byType[type].options.find((o) => o.option === name);
	assert.strictEqual(opt('global', 'access_key').password, true);
	assert.strictEqual(opt('httpdns', 'secret').password, true);
	assert.strictEqual(byType.record.anonymous, true);
	assert.strictEqual(byType.record.addremove, true);
	assert.deepStrictEqual(opt('record', 'ipv6_suffix').deps, [['type', 'AAAA']]);
});

test('record options read like the binary: sub_domain wins over rr, type in any case', async () => {
	const { env, byType } = await formOptions();
	const opt = (name) => byType.record.options.find((o) => o.option === name);
	assert.strictEqual(opt('rr').load('r1'), 'www');
	assert.strictEqual(opt('type').load('r1'), 'AAAA');
	opt('rr').write('r1', 'home');
	const data = env.sections[0].map.data;
	assert.strictEqual(data.get('aliddns', 'r1', 'rr'), 'home');
	assert.strictEqual(data.get('aliddns', 'r1', 'sub_domain'), undefined);
	const ifaces = opt('interface').keylist.map((k) => k[0]);
	assert.deepStrictEqual(ifaces, ['auto', 'eth0', 'pppoe-wan']);
	assert.match(opt('interface').keylist[2][1], /down/);
});

test('validators accept and refuse what src/config.rs does', async () => {
	const { byType } = await formOptions();
	const v = (type, name, value) => byType[type].options.find((o) => o.option === name).validate('x', value) === true;
	for (const ok of ['example.com', 'Example.COM.', 'a-b_c.example.co.uk'])
		assert.ok(v('record', 'domain', ok), ok);
	for (const bad of ['', 'localhost', 'exa mple.com', 'a..b', 'x.' + 'a'.repeat(64), '*.example.com'])
		assert.ok(!v('record', 'domain', bad), bad);
	for (const ok of ['www', '@', '*', '*.home', 'a.b', 'home_1'])
		assert.ok(v('record', 'rr', ok), ok);
	for (const bad of ['', 'a.*', 'a b', 'www.', '@.x'])
		assert.ok(!v('record', 'rr', bad), bad);
	for (const ok of ['', '8053', ':8053', '192.168.1.1:8053', '[::]:8053', '[fd00::1]:80'])
		assert.ok(v('httpdns', 'listen', ok), ok);
	for (const bad of ['192.168.1.1', '300.1.1.1:80', 'lan:8053', '[::]', '8053x', '70000'])
		assert.ok(!v('httpdns', 'listen', bad), bad);
	assert.ok(v('global', 'ip_urls', 'https://myip.ipip.net/s'));
	assert.ok(!v('global', 'ip_urls', 'myip.ipip.net'));
	assert.ok(v('httpdns', 'secret', '0123456789abcdef'));
	assert.ok(!v('httpdns', 'secret', 'short'));
	assert.ok(v('record', 'ipv6_suffix', '::211:32ff:fe12:3456'));
	assert.ok(!v('record', 'ipv6_suffix', '::1/64'));
	assert.ok(v('record', 'line', 'cn_unicom_shanxi'));
	assert.ok(!v('record', 'line', 'two words'));
});

test('log view: last lines of logread -e aliddns, polled, no save buttons', async () => {
	const lines = Array.from({ length: 250 }, (_, i) => 'Nov 28 10:00:00 2026 daemon.info aliddns[1]: line ' + i);
	const env = makeEnv({ execResults: { [LOGREAD]: { code: 0, stdout: lines.join('\n') + '\n', stderr: '' } } });
	const view = loadView('log.js', env);
	const page = view.render(await view.load());
	assert.deepStrictEqual(env.execs, [LOGREAD]);
	const pre = page.findAll((n) => n.attrs.id === 'aliddns-log')[0];
	const shown = pre.text.split('\n');
	assert.strictEqual(shown.length, 200);
	assert.match(shown[199], /line 249$/);
	assert.strictEqual(env.polls.length, 1);
	assert.strictEqual(view.handleSave, null);
	const missing = makeEnv({ execResults: {} });
	const v2 = loadView('log.js', missing);
	assert.match(v2.render(await v2.load()).text, /Could not run \/sbin\/logread -e aliddns/);
});
