'use strict';
'require view';
'require dom';
'require fs';
'require poll';
'require ui';

/*
 * The last lines aliddns wrote to the system log: its daemon (procd logs its
 * output under the program's name) and the init and hotplug scripts
 * (logger -t aliddns). The ACL allows exactly this command line.
 */
var LOGREAD = '/sbin/logread';
var LOGREAD_ARGS = [ '-e', 'aliddns' ];
var MAX_LINES = 200;

function fetchLog() {
	return L.resolveDefault(fs.exec(LOGREAD, LOGREAD_ARGS), null).then(function(res) {
		if (res == null)
			return { error: _('Could not run %s.').format(LOGREAD + ' ' + LOGREAD_ARGS.join(' ')) };

		if (res.code != 0)
			return { error: _('%s failed (exit code %d): %s').format(LOGREAD, res.code, (res.stderr || '').trim()) };

		var lines = (res.stdout || '').split('\n').filter(function(l) { return l.length > 0; });

		return { lines: lines.slice(-MAX_LINES) };
	});
}

return view.extend({
	load: function() {
		return fetchLog();
	},

	updateLog: function(log) {
		if (log.error) {
			dom.content(this.logNode, E('em', {}, [ log.error ]));
			return;
		}

		var atBottom = (this.logNode.scrollTop + this.logNode.clientHeight >= this.logNode.scrollHeight - 4);

		dom.content(this.logNode, log.lines.length ? [ log.lines.join('\n') ]
			: E('em', {}, [ _('aliddns has not logged anything yet.') ]));

		if (atBottom)
			this.logNode.scrollTop = this.logNode.scrollHeight;
	},

	refresh: function() {
		return fetchLog().then(L.bind(this.updateLog, this));
	},

	render: function(log) {
		this.logNode = E('pre', {
			'id': 'aliddns-log',
			'style': 'max-height:32em; overflow:auto; white-space:pre-wrap; font-size:90%'
		});

		this.updateLog(log);
		poll.add(L.bind(this.refresh, this), 10);

		return E('div', {}, [
			E('h2', {}, _('AliDNS DDNS log')),
			E('div', { 'class': 'cbi-map-descr' },
				_('The last %d lines of the system log from aliddns (logread -e aliddns), oldest first.').format(MAX_LINES)),
			E('div', { 'class': 'cbi-section' }, [
				E('div', { 'style': 'margin-bottom:.5em' },
					E('button', {
						'class': 'btn cbi-button',
						'click': ui.createHandlerFn(this, 'refresh')
					}, _('Refresh'))),
				this.logNode
			])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
