'use strict';
'require view';
return view.extend({ render: function() { return E('p', {}, _('Test fixture')); } });
