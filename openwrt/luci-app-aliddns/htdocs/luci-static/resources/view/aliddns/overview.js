'use strict';
'require view';
'require dom';
'require form';
'require fs';
'require poll';
'require rpc';
'require uci';
'require ui';

/*
 * AliDNS DDNS: the status of every record (from `aliddns status --json`), an
 * "Update now" button (the init script's `trigger`) and the settings form over
 * /etc/config/aliddns.
 *
 * The two commands below are the only ones this page runs; the ACL
 * (root/usr/share/rpcd/acl.d/luci-app-aliddns.json) allows exactly these
 * command lines, so the arguments must not change without changing it.
 */
var PROG = '/usr/bin/aliddns';
var STATUS_ARGS = [ '-c', '/etc/config/aliddns', 'status', '--json' ];
var INIT = '/etc/init.d/aliddns';
var TRIGGER_ARGS = [ 'trigger' ];

/*
 * Text from the router (record names, values, AliDNS error messages, log lines)
 * is always passed to E()/dom.content() inside an array: LuCI turns a bare
 * string argument into innerHTML, an array element into a text node.
 */

/* The same rules as the binary (src/config.rs) applies when it reads the file. */
var RE_LABEL = /^[A-Za-z0-9_-]{1,63}$/;
var RE_URL = /^https?:\/\/\S+$/;
var RE_PORT = /^:?([0-9]{1,5})$/;
var RE_V4_PORT = /^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3}):([0-9]{1,5})$/;
var RE_V6_PORT = /^\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})$/;
var RE_LINE = /^[A-Za-z0-9_.-]+$/;
var RE_ABS_PATH = /^\/\S*$/;

var callNetworkDevices = rpc.declare({
	object: 'luci-rpc',
	method: 'getNetworkDevices',
	expect: { '': {} }
});

function isDomain(v) {
	var labels = v.replace(/\.$/, '').split('.');

	if (v.length > 253 || labels.length < 2)
		return false;

	for (var i = 0; i < labels.length; i++)
		if (!RE_LABEL.test(labels[i]))
			return false;

	return true;
}

function isHostRecord(v) {
	if (v == '@')
		return true;

	var labels = v.split('.');

	if (v.length > 253)
		return false;

	for (var i = 0; i < labels.length; i++)
		if (!(labels[i] == '*' && i == 0) && !RE_LABEL.test(labels[i]))
			return false;

	return true;
}

function isPort(p) {
	var n = +p;
	return n >= 0 && n <= 65535;
}

/* ADDR:PORT, [V6]:PORT or a bare port, as `aliddns serve` takes it. */
function isListen(v) {
	var m = RE_PORT.exec(v);

	if (m)
		return isPort(m[1]);

	m = RE_V4_PORT.exec(v);

	if (m)
		return +m[1] <= 255 && +m[2] <= 255 && +m[3] <= 255 && +m[4] <= 255 && isPort(m[5]);

	m = RE_V6_PORT.exec(v);

	return (m != null && m[1].indexOf(':') >= 0 && isPort(m[2]));
}

function fmtTime(t) {
	if (t == null || isNaN(t))
		return '-';

	var d = new Date(t * 1000);

	return '%04d-%02d-%02d %02d:%02d:%02d'.format(d.getFullYear(), d.getMonth() + 1, d.getDate(),
		d.getHours(), d.getMinutes(), d.getSeconds());
}

function resultText(result) {
	switch (result) {
	case 'updated':   return _('Updated');
	case 'created':   return _('Created');
	case 'unchanged': return _('Unchanged');
	case 'missing':   return _('Record missing');
	case 'failed':    return _('Failed');
	case 'never':     return _('Not checked yet');
	case 'disabled':  return _('Disabled');
	default:          return result || '-';
	}
}

/* Runs `aliddns status --json`; never rejects, so a missing binary or a denied
 * call still lets the page render. */
function fetchStatus() {
	return L.resolveDefault(fs.exec(PROG, STATUS_ARGS), null).then(function(res) {
		var data = null;

		if (res == null)
			return { error: _('Could not run %s: is the aliddns package installed?').format(PROG) };

		try {
			data = JSON.parse(res.stdout);
		}
		catch (e) {
			data = null;
		}

		if (data == null || typeof(data) != 'object' || !Array.isArray(data.records))
			return { error: (res.stderr || '').trim() || _('aliddns status gave no usable answer (exit code %d).').format(res.code) };

		return data;
	});
}

var lineChoices = [
	[ 'default', _('Default') ],
	[ 'telecom', _('China Telecom') ],
	[ 'unicom', _('China Unicom') ],
	[ 'mobile', _('China Mobile') ],
	[ 'edu', _('China Education Network') ],
	[ 'drpeng', _('Dr. Peng') ],
	[ 'btvn', _('China Broadcast Network') ],
	[ 'oversea', _('Outside mainland China') ],
	[ 'search', _('Search engines') ]
];

function lineText(code) {
	for (var i = 0; i < lineChoices.length; i++)
		if (lineChoices[i][0] == code)
			return lineChoices[i][1];

	return code || '-';
}

return view.extend({
	load: function() {
		return Promise.all([
			fetchStatus(),
			L.resolveDefault(callNetworkDevices(), {}),
			uci.load('aliddns')
		]);
	},

	renderStatusRows: function(status) {
		var rows = [
			E('tr', { 'class': 'tr table-titles' }, [
				E('th', { 'class': 'th' }, _('Record')),
				E('th', { 'class': 'th' }, _('Type')),
				E('th', { 'class': 'th' }, _('Line')),
				E('th', { 'class': 'th' }, _('Current value')),
				E('th', { 'class': 'th' }, _('Last change')),
				E('th', { 'class': 'th' }, _('Last result'))
			])
		];

		(status.records || []).forEach(function(r) {
			var failed = (r.result == 'failed'),
			    result = [ E('span', {}, [ resultText(r.result) ]) ];

			if (r.error != null && r.error !== '')
				result.push(E('div', {
					'class': 'aliddns-error',
					'style': 'color:#c00; white-space:pre-wrap'
				}, [ String(r.error) ]));

			if (r.checked_at != null)
				result.push(E('div', { 'style': 'font-size:90%; opacity:.75' },
					[ _('checked %s').format(fmtTime(r.checked_at)) ]));

			rows.push(E('tr', { 'class': 'tr' + (failed ? ' aliddns-failed' : '') }, [
				E('td', { 'class': 'td', 'data-title': _('Record') }, [
					E('strong', {}, [ r.name || '-' ]),
					(r.enabled === false) ? E('em', {}, [ ' (%s)'.format(_('disabled')) ]) : ''
				]),
				E('td', { 'class': 'td', 'data-title': _('Type') }, [ r.type || '-' ]),
				E('td', { 'class': 'td', 'data-title': _('Line') }, [ lineText(r.line) ]),
				E('td', { 'class': 'td', 'data-title': _('Current value') }, [ (r.value != null) ? String(r.value) : '-' ]),
				E('td', { 'class': 'td', 'data-title': _('Last change') }, [ fmtTime(r.changed_at) ]),
				E('td', { 'class': 'td', 'data-title': _('Last result'), 'style': failed ? 'color:#c00' : '' }, result)
			]));
		});

		if (rows.length == 1)
			rows.push(E('tr', { 'class': 'tr placeholder' }, [
				E('td', { 'class': 'td', 'colspan': 6 }, E('em', {}, _('No record is configured yet: add one under "Records" below.')))
			]));

		return rows;
	},

	updateStatus: function(status) {
		var running = this.statusNodes.running,
		    table = this.statusNodes.table,
		    error = this.statusNodes.error;

		if (status.error) {
			dom.content(running, E('em', {}, _('unknown')));
			dom.content(error, E('p', { 'class': 'alert-message warning' }, [ status.error ]));
			dom.content(table, this.renderStatusRows({ records: [] }));
			return;
		}

		dom.content(running, status.running
			? E('span', { 'style': 'color:#080; font-weight:bold' }, _('running'))
			: E('span', { 'style': 'color:#c00; font-weight:bold' }, _('not running')));
		dom.content(error, '');
		dom.content(table, this.renderStatusRows(status));
	},

	refreshStatus: function() {
		return fetchStatus().then(L.bind(this.updateStatus, this));
	},

	handleTrigger: function(ev) {
		return L.resolveDefault(fs.exec(INIT, TRIGGER_ARGS), null).then(L.bind(function(res) {
			if (res == null)
				ui.addNotification(null, E('p', {}, [ _('Could not run %s %s.').format(INIT, TRIGGER_ARGS.join(' ')) ]), 'error');
			else if (res.code != 0)
				ui.addNotification(null, E('p', {}, [ _('%s %s failed (exit code %d): %s').format(INIT, TRIGGER_ARGS.join(' '),
					res.code, (res.stderr || res.stdout || '').trim()) ]), 'error');

			/* The pass runs in the background; look again once it has had time to finish. */
			window.setTimeout(L.bind(this.refreshStatus, this), 3000);

			return this.refreshStatus();
		}, this));
	},

	renderStatus: function(status) {
		this.statusNodes = {
			running: E('span', { 'id': 'aliddns-running' }),
			error: E('div', { 'id': 'aliddns-status-error' }),
			table: E('table', { 'class': 'table', 'id': 'aliddns-status-table' })
		};

		this.updateStatus(status);

		return E('div', { 'class': 'cbi-section', 'id': 'aliddns-status' }, [
			E('h3', {}, _('Status')),
			E('div', { 'class': 'cbi-section-descr' }, [
				_('Daemon:'), ' ', this.statusNodes.running, ' ',
				E('button', {
					'class': 'btn cbi-button cbi-button-action',
					'click': ui.createHandlerFn(this, 'handleTrigger')
				}, _('Update now'))
			]),
			this.statusNodes.error,
			this.statusNodes.table
		]);
	},

	render: function(data) {
		var status = data[0],
		    devices = data[1] || {},
		    m, s, o;

		m = new form.Map('aliddns');

		/* Global settings: the section named 'global' (type global). */
		s = m.section(form.NamedSection, 'global', 'global', _('Global settings'));
		s.addremove = !uci.get('aliddns', 'global');
		s.tab('general', _('General'));
		s.tab('advanced', _('Advanced'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enable'),
			_('Keep the records below pointed at this router. While off, the daemon, the hotplug scripts and cron do nothing.'));
		o.default = '1';
		o.rmempty = false;

		o = s.taboption('general', form.Value, 'access_id', _('AccessKey ID'),
			_('AccessKey of a RAM user that may change DNS records (policy AliyunDNSFullAccess).'));
		o.rmempty = true;

		o = s.taboption('general', form.Value, 'access_key', _('AccessKey Secret'));
		o.password = true;
		o.rmempty = true;

		o = s.taboption('general', form.Value, 'interval', _('Check interval'),
			_('Seconds between two passes of the daemon (10 to 604800).'));
		o.datatype = 'range(10,604800)';
		o.placeholder = '600';

		o = s.taboption('advanced', form.Value, 'verify_interval', _('Verify interval'),
			_('Seconds a published address is trusted before AliDNS is asked again (0 to 2592000; 0 asks on every pass).'));
		o.datatype = 'range(0,2592000)';
		o.placeholder = '3600';

		o = s.taboption('advanced', form.Value, 'timeout', _('Timeout'),
			_('Seconds to wait for AliDNS or an address lookup (1 to 300).'));
		o.datatype = 'range(1,300)';
		o.placeholder = '10';

		o = s.taboption('advanced', form.Value, 'retries', _('Retries'),
			_('How often a failed request to AliDNS is retried (0 to 10).'));
		o.datatype = 'range(0,10)';
		o.placeholder = '3';

		o = s.taboption('advanced', form.DynamicList, 'ip_urls', _('IPv4 lookup URLs'),
			_('Where A records without an interface learn the public IPv4 address, tried in order. Empty: the built-in list.'));
		o.placeholder = 'https://myip.ipip.net/s';
		o.validate = function(section_id, value) {
			return (!value || RE_URL.test(value)) ? true : _('Must start with http:// or https://');
		};

		o = s.taboption('advanced', form.DynamicList, 'ipv6_urls', _('IPv6 lookup URLs'),
			_('Where AAAA records without an interface learn the public IPv6 address, tried in order. Empty: the built-in list.'));
		o.placeholder = 'https://6.ipw.cn';
		o.validate = function(section_id, value) {
			return (!value || RE_URL.test(value)) ? true : _('Must start with http:// or https://');
		};

		/* Records: one anonymous or named 'record' section each. */
		s = m.section(form.GridSection, 'record', _('Records'),
			_('Each record is kept equal to an address of this router. The interface is the Linux device the address is read from (pppoe-wan, eth0.2, br-lan), not the network name; "auto" follows the default route; with no interface an A record uses the lookup URLs.'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;
		s.addbtntitle = _('Add record');

		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;
		o.editable = true;

		o = s.option(form.Value, 'domain', _('Domain'), _('The domain name as listed in the AliDNS console, e.g. example.com.'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			if (!value)
				return _('A domain is required');

			return isDomain(value) ? true : _('Not a domain name like example.com');
		};

		o = s.option(form.Value, 'rr', _('Host record'), _('The part in front of the domain: www, home, @ for the domain itself, * for a wildcard.'));
		o.rmempty = false;
		o.load = function(section_id) {
			/* sub_domain is the binary's other name for rr (and wins): show it, save it as rr. */
			return this.map.data.get('aliddns', section_id, 'sub_domain') || this.map.data.get('aliddns', section_id, 'rr');
		};
		o.write = function(section_id, value) {
			this.map.data.unset('aliddns', section_id, 'sub_domain');
			this.map.data.set('aliddns', section_id, 'rr', value);
		};
		o.validate = function(section_id, value) {
			if (!value)
				return _('A host record is required');

			return isHostRecord(value) ? true : _('Not a host record (www, a.b, *, @)');
		};

		o = s.option(form.ListValue, 'type', _('Record type'));
		o.value('A', _('A (IPv4)'));
		o.value('AAAA', _('AAAA (IPv6)'));
		o.default = 'A';
		o.load = function(section_id) {
			/* The binary takes a and aaaa too. */
			var v = this.map.data.get('aliddns', section_id, 'type');
			return v ? v.toUpperCase() : v;
		};

		o = s.option(form.Value, 'interface', _('Interface'));
		o.placeholder = _('none (lookup URLs)');
		o.value('auto', _('auto (default route)'));
		Object.keys(devices).sort().forEach(function(name) {
			if (name == 'lo')
				return;

			o.value(name, devices[name].up === false ? '%s (%s)'.format(name, _('down')) : name);
		});
		o.rmempty = true;
		o.textvalue = function(section_id) {
			return '%h'.format(this.cfgvalue(section_id) || _('none (lookup URLs)'));
		};

		o = s.option(form.Value, 'line', _('Line'), _('Resolution line of the record: "default" unless the domain should answer differently per network.'));
		lineChoices.forEach(function(c) { o.value(c[0], '%s (%s)'.format(c[1], c[0])); });
		o.placeholder = lineText('default');
		o.rmempty = true;
		o.textvalue = function(section_id) {
			return '%h'.format(lineText(this.cfgvalue(section_id) || 'default'));
		};
		o.validate = function(section_id, value) {
			return (!value || RE_LINE.test(value)) ? true : _('Not a line code like default or telecom');
		};

		o = s.option(form.Value, 'ttl', _('TTL'), _('Seconds (1 to 86400; the free AliDNS edition accepts 600 and more). Empty: the record keeps its TTL (600 for a new one).'));
		o.datatype = 'range(1,86400)';
		o.placeholder = '600';
		o.modalonly = true;

		o = s.option(form.Flag, 'create', _('Create when missing'), _('Add the record to AliDNS when it does not exist yet.'));
		o.default = '0';
		o.modalonly = true;

		o = s.option(form.Value, 'ipv6_suffix', _('IPv6 suffix'),
			_('For a LAN host: its interface ID (e.g. ::211:32ff:fe12:3456) joined to the prefix of the interface.'));
		o.datatype = 'ip6addr';
		o.depends('type', 'AAAA');
		o.modalonly = true;
		o.validate = function(section_id, value) {
			return (!value || value.indexOf('/') < 0) ? true : _('An interface ID has no prefix length');
		};

		/* The GoEdge / FlexCDN custom HTTP DNS bridge (`aliddns serve`). */
		s = m.section(form.NamedSection, 'httpdns', 'httpdns', _('GoEdge HTTP DNS bridge'),
			_('Lets GoEdge or FlexCDN manage the account\'s records through "aliddns serve" (its custom HTTP DNS provider). Runs independently of the DDNS switch above.'));
		s.addremove = true;

		o = s.option(form.Flag, 'enabled', _('Enable'));
		o.default = '1';
		o.rmempty = false;

		o = s.option(form.Value, 'listen', _('Listen address'),
			_('ADDR:PORT that GoEdge reaches, e.g. 192.168.1.1:8053; keep it on the LAN, never the WAN. Empty: port 8053 on every address.'));
		o.placeholder = '192.168.1.1:8053';
		o.validate = function(section_id, value) {
			return (!value || isListen(value)) ? true : _('Not ADDR:PORT, [IPv6]:PORT or a port');
		};

		o = s.option(form.Value, 'secret', _('Secret'), _('The secret GoEdge shows for the custom HTTP DNS provider, 16 characters or more.'));
		o.password = true;
		o.validate = function(section_id, value) {
			return (!value || value.length >= 16) ? true : _('Use at least 16 characters');
		};

		o = s.option(form.DynamicList, 'domains', _('Domains'), _('Domains GoEdge may change. Empty: every domain of the account.'));
		o.validate = function(section_id, value) {
			return (!value || isDomain(value)) ? true : _('Not a domain name like example.com');
		};

		o = s.option(form.Value, 'max_skew', _('Maximum clock skew'), _('Seconds a signed request may be off the router\'s clock (1 to 86400).'));
		o.datatype = 'range(1,86400)';
		o.placeholder = '300';

		o = s.option(form.Value, 'tls_cert', _('TLS certificate'), _('PEM file; with a key, the bridge speaks HTTPS.'));
		o.placeholder = '/etc/aliddns/cert.pem';
		o.validate = function(section_id, value) {
			return (!value || RE_ABS_PATH.test(value)) ? true : _('An absolute path is required');
		};

		o = s.option(form.Value, 'tls_key', _('TLS key'), _('PEM private key of the certificate.'));
		o.placeholder = '/etc/aliddns/key.pem';
		o.validate = function(section_id, value) {
			return (!value || RE_ABS_PATH.test(value)) ? true : _('An absolute path is required');
		};

		return m.render().then(L.bind(function(mapEl) {
			var statusBox = this.renderStatus(status);

			poll.add(L.bind(this.refreshStatus, this), 10);

			/* Status box beside the map, not inside it: saving re-renders the map's element. */
			var page = E('div', {}, [
				E('h2', {}, _('AliDNS DDNS')),
				E('div', { 'class': 'cbi-map-descr' },
					_('Keeps Alibaba Cloud DNS (AliDNS) A and AAAA records pointed at this router\'s addresses.')),
				statusBox,
				mapEl
			]);

			return page;
		}, this));
	}
});
