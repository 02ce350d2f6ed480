/*
 * A stand-in for LuCI's client runtime, just enough to run the aliddns views in
 * a browser without a router: scripts/luci-preview.py serves this page and takes
 * a screenshot with headless Chromium. It is NOT LuCI: forms are drawn with
 * LuCI's CSS class names by the small renderer below, not by form.js. What it
 * does exercise for real is the views' own code (status table, buttons, poll),
 * the browser's JS engine, and the translation path: _() looks strings up in a
 * catalog keyed by the same SuperFastHash LuCI uses, generated from the .lmo
 * that scripts/po2lmo.py compiles.
 */
(function() {
	'use strict';

	var errors = [];
	function report(msg) {
		errors.push(String(msg));
		var pre = document.getElementById('preview-errors');
		if (pre) pre.textContent = errors.join('\n');
	}
	window.addEventListener('error', function(ev) { report('error: ' + ev.message); });
	window.addEventListener('unhandledrejection', function(ev) { report('rejection: ' + (ev.reason && ev.reason.stack || ev.reason)); });

	/* ---- translations: TR[hash of the canonical msgid] as LuCI's _() does */
	function sfh(s) {
		var bytes = Array.from(new TextEncoder().encode(s)), len = bytes.length;
		if (!len) return null;
		function u16(o) { return (bytes[o] | (bytes[o + 1] << 8)) >>> 0; }
		function s8(o) { return bytes[o] > 127 ? bytes[o] - 256 : bytes[o]; }
		var h = len >>> 0, off = 0, tmp;
		for (var n = len >>> 2; n > 0; n--, off += 4) {
			h = (h + u16(off)) >>> 0;
			tmp = ((u16(off + 2) << 11) ^ h) >>> 0;
			h = ((h << 16) ^ tmp) >>> 0;
			h = (h + (h >>> 11)) >>> 0;
		}
		switch (len & 3) {
		case 3: h = (h + u16(off)) >>> 0; h = (h ^ (h << 16)) >>> 0; h = (h ^ (s8(off + 2) << 18)) >>> 0; h = (h + (h >>> 11)) >>> 0; break;
		case 2: h = (h + u16(off)) >>> 0; h = (h ^ (h << 11)) >>> 0; h = (h + (h >>> 17)) >>> 0; break;
		case 1: h = (h + s8(off)) >>> 0; h = (h ^ (h << 10)) >>> 0; h = (h + (h >>> 1)) >>> 0; break;
		}
		h = (h ^ (h << 3)) >>> 0; h = (h + (h >>> 5)) >>> 0; h = (h ^ (h << 4)) >>> 0;
		h = (h + (h >>> 17)) >>> 0; h = (h ^ (h << 25)) >>> 0; h = (h + (h >>> 6)) >>> 0;
		return ('0000000' + h.toString(16)).slice(-8);
	}
	window._ = function(s, c) {
		var k = (c != null ? c + '\u0001' : '') + String(s).trim().replace(/[ \t\n]+/g, ' ');
		return (window.TR && window.TR[sfh(k)]) || s;
	};

	/* ---- String.prototype.format for the conversions the views use */
	String.prototype.format = function() {
		var args = arguments, i = 0;
		return this.replace(/%(0?)(\d*)([sdh%])/g, function(m, zero, width, conv) {
			if (conv == '%') return '%';
			var v = args[i++];
			v = (conv == 'd') ? String(Math.floor(+v || 0)) : String(v);
			if (conv == 'h') v = v.replace(/&/g, '&#38;').replace(/"/g, '&#34;').replace(/</g, '&#60;').replace(/>/g, '&#62;');
			while (width && v.length < +width) v = (zero ? '0' : ' ') + v;
			return v;
		});
	};

	/* ---- dom and E with LuCI's rules (bare string = innerHTML, array items = text) */
	var dom = {
		elem: function(e) { return e != null && typeof(e) == 'object' && 'nodeType' in e; },
		append: function(node, children) {
			if (Array.isArray(children)) {
				children.forEach(function(c) {
					node.appendChild(dom.elem(c) ? c : document.createTextNode('' + c));
				});
			}
			else if (dom.elem(children)) node.appendChild(children);
			else if (children != null) node.innerHTML = '' + children;
			return node;
		},
		content: function(node, children) {
			while (node.firstChild) node.removeChild(node.firstChild);
			return dom.append(node, children);
		},
		create: function(tag, attrs, children) {
			if (Array.isArray(attrs) || typeof(attrs) != 'object' || attrs === null || dom.elem(attrs))
				children = attrs, attrs = null;
			var el = Array.isArray(tag) ? document.createDocumentFragment() : document.createElement(tag);
			Object.keys(attrs || {}).forEach(function(k) {
				var v = attrs[k];
				if (v == null) return;
				if (typeof(v) == 'function') el.addEventListener(k, v);
				else el.setAttribute(k, v);
			});
			return dom.append(el, children);
		}
	};
	window.E = function() { return dom.create.apply(dom, arguments); };

	/* ---- sample data the fake router answers with */
	var now = Math.floor(Date.now() / 1000);
	var config = {
		global: { '.type': 'global', enabled: '1', access_id: 'LTAI5tExampleId', access_key: 'example-secret',
			interval: '600', ip_urls: [ 'https://myip.ipip.net/s' ] },
		home4: { '.type': 'record', domain: 'example.com', rr: 'home', type: 'A', interface: 'pppoe-wan', create: '1', enabled: '1' },
		home6: { '.type': 'record', domain: 'example.com', rr: 'home', type: 'AAAA', interface: 'pppoe-wan', line: 'telecom', enabled: '1' },
		nas6: { '.type': 'record', domain: 'example.com', rr: 'nas', type: 'AAAA', interface: 'br-lan', ipv6_suffix: '::211:32ff:fe12:3456', enabled: '1' },
		httpdns: { '.type': 'httpdns', enabled: '0', listen: '192.168.1.1:8053' }
	};
	var status = {
		config: '/etc/config/aliddns', state_file: '/var/run/aliddns/state', running: true,
		records: [
			{ section: 'home4', name: 'home.example.com', domain: 'example.com', rr: 'home', type: 'A', line: 'default', enabled: true,
			  value: '203.0.113.7', record_id: '1000001', changed_at: now - 7200, checked_at: now - 120, result: 'unchanged', error: null },
			{ section: 'home6', name: 'home.example.com', domain: 'example.com', rr: 'home', type: 'AAAA', line: 'telecom', enabled: true,
			  value: '2001:db8:1:2::1', record_id: '1000002', changed_at: now - 86400, checked_at: now - 120, result: 'updated', error: null },
			{ section: 'nas6', name: 'nas.example.com', domain: 'example.com', rr: 'nas', type: 'AAAA', line: 'default', enabled: true,
			  value: null, record_id: null, changed_at: null, checked_at: now - 120, result: 'failed',
			  error: 'Forbidden.RAM: User not authorized to operate on the specified resource.' }
		]
	};
	if (window.PREVIEW_STATUS)
		status = window.PREVIEW_STATUS;
	var log = [
		'Sat Nov 28 09:58:01 2026 daemon.info aliddns[2210]: home.example.com A: 203.0.113.7 unchanged',
		'Sat Nov 28 09:58:02 2026 daemon.info aliddns[2210]: home.example.com AAAA: 2001:db8:1:2::1 updated',
		'Sat Nov 28 09:58:02 2026 daemon.err aliddns[2210]: nas.example.com AAAA: Forbidden.RAM: User not authorized to operate on the specified resource.'
	];
	window.previewExecs = [];

	var modules = {
		view: { extend: function(proto) { return proto; } },
		dom: dom,
		poll: { add: function(fn, interval) { window.previewPolls = (window.previewPolls || 0) + 1; } },
		fs: {
			exec: function(cmd, args) {
				var line = [ cmd ].concat(args || []).join(' ');
				window.previewExecs.push(line);
				if (line == '/usr/bin/aliddns -c /etc/config/aliddns status --json')
					return Promise.resolve({ code: 0, stdout: JSON.stringify(status), stderr: '' });
				if (line == '/etc/init.d/aliddns trigger')
					return Promise.resolve({ code: 0, stdout: '', stderr: '' });
				if (line == '/sbin/logread -e aliddns')
					return Promise.resolve({ code: 0, stdout: log.join('\n') + '\n', stderr: '' });
				return Promise.reject(new Error('Permission denied: ' + line));
			}
		},
		rpc: { declare: function(spec) { return function() {
			return Promise.resolve({ 'br-lan': { up: true }, 'eth0': { up: true }, 'eth1': { up: true }, 'lo': { up: true }, 'pppoe-wan': { up: true }, 'wg0': { up: false } });
		}; } },
		uci: {
			load: function() { return Promise.resolve(); },
			get: function(conf, sid, opt) { return opt ? (config[sid] || {})[opt] : config[sid]; },
			sections: function(conf, type) {
				return Object.keys(config).filter(function(k) { return config[k]['.type'] == type; });
			}
		},
		ui: {
			createHandlerFn: function(self, fn) {
				var f = (typeof(fn) == 'string') ? self[fn] : fn;
				return function(ev) { return f.call(self, ev); };
			},
			addNotification: function(title, body) { report('notification: ' + body.textContent); }
		},
		form: makeForm()
	};

	/* ---- a small renderer with LuCI's class names for the form API the view uses */
	function makeForm() {
		function Option(type, name, title, descr) {
			this.type = type; this.option = name; this.title = title; this.description = descr;
			this.keylist = []; this.deps = [];
		}
		Option.prototype.value = function(k, v) { this.keylist.push([ k, v == null ? k : v ]); };
		Option.prototype.depends = function(k, v) { this.deps.push([ k, v ]); };

		function Section(map, type, args) {
			this.map = map; this.type = type; this.args = args; this.options = []; this.tabs = [];
		}
		Section.prototype.tab = function(name, title) { this.tabs.push([ name, title ]); };
		Section.prototype.option = function(cls, name, title, descr) {
			var o = new Option(cls, name, title, descr);
			o.map = this.map; o.section = this;
			this.options.push(o);
			return o;
		};
		Section.prototype.taboption = function(tab, cls, name, title, descr) {
			var o = this.option(cls, name, title, descr);
			o.tab = tab;
			return o;
		};

		var data = {
			get: function(conf, sid, opt) { return (config[sid] || {})[opt]; },
			set: function() {}, unset: function() {}
		};

		function valueOf(o, sid) {
			var v = o.load ? o.load(sid) : data.get('aliddns', sid, o.option);
			return v == null ? o.default : v;
		}

		function widget(o, sid) {
			var v = valueOf(o, sid);
			switch (o.type) {
			case 'Flag':
				return E('input', { 'type': 'checkbox', 'class': 'cbi-input-checkbox', 'checked': v == '1' ? '' : null, 'disabled': o.editable === false ? '' : null });
			case 'ListValue':
				return E('select', { 'class': 'cbi-input-select' }, o.keylist.map(function(kv) {
					return E('option', { 'value': kv[0], 'selected': kv[0] == v ? '' : null }, [ kv[1] ]);
				}));
			case 'DynamicList':
				return E('div', { 'class': 'cbi-dynlist' }, (v || []).map(function(item) {
					return E('div', { 'class': 'item' }, [ E('span', {}, [ item ]) ]);
				}).concat([ E('div', { 'class': 'add-item' }, [ E('input', { 'type': 'text', 'class': 'cbi-input-text', 'placeholder': o.placeholder || '' }), E('div', { 'class': 'btn cbi-button cbi-button-add' }, '+') ]) ]));
			default:
				var label = v;
				o.keylist.forEach(function(kv) { if (kv[0] == v) label = kv[1]; });
				return E('input', { 'type': o.password ? 'password' : 'text', 'class': 'cbi-input-text',
					'value': label != null ? label : '', 'placeholder': o.placeholder || '' });
			}
		}

		function renderNamed(s) {
			var sid = s.args[0];
			if (!config[sid]) return E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ s.args[2] ]), E('div', { 'class': 'cbi-section-create' }, E('button', { 'class': 'btn cbi-button cbi-button-add' }, [ _('Add') ])) ]);
			var tabs = s.tabs.length ? s.tabs : [ [ null, null ] ];
			var body = [];
			if (s.tabs.length)
				body.push(E('ul', { 'class': 'cbi-tabmenu' }, s.tabs.map(function(t, i) {
					return E('li', { 'class': i == 0 ? 'cbi-tab' : 'cbi-tab-disabled' }, E('a', { 'href': '#' }, [ t[1] ]));
				})));
			s.options.filter(function(o) { return o.tab == null || o.tab == tabs[0][0]; }).forEach(function(o) {
				body.push(E('div', { 'class': 'cbi-value' }, [
					E('label', { 'class': 'cbi-value-title' }, [ o.title ]),
					E('div', { 'class': 'cbi-value-field' }, [ widget(o, sid), o.description ? E('div', { 'class': 'cbi-value-description' }, [ o.description ]) : '' ])
				]));
			});
			return E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ s.args[2] ]), s.args[3] ? E('div', { 'class': 'cbi-section-descr' }, [ s.args[3] ]) : '' ].concat(body));
		}

		function renderGrid(s) {
			var cols = s.options.filter(function(o) { return !o.modalonly; });
			var rows = modules.uci.sections('aliddns', s.args[0]).map(function(sid) {
				return E('tr', { 'class': 'tr cbi-section-table-row' }, cols.map(function(o) {
					var cell = (o.type == 'Flag' && o.editable) ? widget(o, sid)
						: E('span', {}, o.textvalue ? null : [ String(valueOf(o, sid) || '-') ]);
					if (o.textvalue && !(o.type == 'Flag' && o.editable)) {
						o.cfgvalue = function(id) { return data.get('aliddns', id, o.option); };
						cell.innerHTML = o.textvalue(sid);
					}
					else if (o.type == 'ListValue') {
						var v = valueOf(o, sid);
						o.keylist.forEach(function(kv) { if (kv[0] == v) cell.textContent = kv[1]; });
					}
					return E('td', { 'class': 'td cbi-value-field' }, [ cell ]);
				}).concat([ E('td', { 'class': 'td cbi-section-table-cell nowrap cbi-section-actions' }, [
					E('button', { 'class': 'btn cbi-button cbi-button-edit' }, [ _('Edit') ]), ' ',
					E('button', { 'class': 'btn cbi-button cbi-button-remove' }, [ _('Delete') ]) ]) ]));
			});
			return E('div', { 'class': 'cbi-section cbi-tblsection' }, [
				E('h3', {}, [ s.args[1] ]),
				E('div', { 'class': 'cbi-section-descr' }, [ s.args[2] ]),
				E('table', { 'class': 'table cbi-section-table' }, [
					E('tr', { 'class': 'tr cbi-section-table-titles' }, cols.map(function(o) { return E('th', { 'class': 'th' }, [ o.title ]); }).concat([ E('th', { 'class': 'th' }) ]))
				].concat(rows)),
				E('div', { 'class': 'cbi-section-create' }, E('button', { 'class': 'btn cbi-button cbi-button-add' }, [ s.addbtntitle || _('Add') ]))
			]);
		}

		var form = {
			Map: function(conf, title) { this.config = conf; this.title = title; this.data = data; this.sections = []; }
		};
		form.Map.prototype.section = function(cls) {
			var s = new Section(this, cls, Array.prototype.slice.call(arguments, 1));
			this.sections.push(s);
			return s;
		};
		form.Map.prototype.render = function() {
			var map = this;
			return Promise.resolve(E('div', { 'class': 'cbi-map' }, map.sections.map(function(s) {
				return s.type == 'GridSection' ? renderGrid(s) : renderNamed(s);
			})));
		};
		[ 'NamedSection', 'GridSection', 'TableSection', 'TypedSection', 'Flag', 'Value', 'ListValue', 'DynamicList' ]
			.forEach(function(n) { form[n] = n; });
		return form;
	}

	/* ---- load a view the way LuCI's loader does: 'require lines become parameters */
	window.previewView = function(path) {
		return fetch(path).then(function(r) { return r.text(); }).then(function(src) {
			var names = [], m, re = /^'require ([\w.]+)(?: as (\w+))?';$/gm;
			while ((m = re.exec(src)) != null) names.push(m[2] || m[1]);
			var view = Function.apply(null, names.concat([ src ])).apply(null, names.map(function(n) {
				if (!(n in modules)) throw new Error('stub has no module ' + n);
				return modules[n];
			}));
			return Promise.resolve(view.load()).then(function(data) { return view.render(data); }).then(function(node) {
				dom.content(document.getElementById('view'), node);
				return view;
			});
		}).catch(function(e) { report('view: ' + (e.stack || e)); });
	};
	window.L = {
		resolveDefault: function(p, d) { return Promise.resolve(p).catch(function() { return d; }); },
		bind: function(fn, self) { var a = Array.prototype.slice.call(arguments, 2); return function() { return fn.apply(self, a.concat(Array.prototype.slice.call(arguments))); }; }
	};
})();
