/* The console's interface strings (zh-CN first, English), added to the shared dictionary of i18n.js. */

import { register } from '/static/common/i18n.js';

register({
  'zh-CN': {
    consoleTitle: '指挥台 · gridlink 网格化联动指挥', mapLabel: '地图',
    baseOnline: '在线底图（OpenStreetMap）', baseFailed: '在线底图无法加载（可能处于内网），已切换回离线背景。',
    anonHint: '登录后显示城市部件和案件', whatIsHere: '此处有什么',
    layer_districts: '区', layer_towns: '镇街', layer_communities: '社区村', layer_grids: '基础网格',
    'layer_special-grids': '专属网格', layer_components: '城市部件', layer_cases: '案件',
    code: '编码', name: '名称', kind: '类型', klass: '部件类别', owner: '权属单位', status: '状态',
    count: '数量', category: '类别', state: '状态', reportedAt: '上报时间', openCase: '查看案件',
    zoomIn: '放大查看', locating: '查询中…',
    state_reported: '待立案', state_registered: '已立案', state_dispatched: '已派遣', state_handled: '已处置',
    state_suspended: '挂账', state_closed: '已结案', state_voided: '已作废',
  },
  en: {
    consoleTitle: 'Console · gridlink grid command centre', mapLabel: 'Map',
    baseOnline: 'Online base map (OpenStreetMap)',
    baseFailed: 'The online base map cannot be loaded (intranet?): back to the offline background.',
    anonHint: 'Log in to see components and cases', whatIsHere: 'What is here',
    layer_districts: 'District', layer_towns: 'Town', layer_communities: 'Community', layer_grids: 'Base grid',
    'layer_special-grids': 'Special grid', layer_components: 'Component', layer_cases: 'Case',
    code: 'Code', name: 'Name', kind: 'Kind', klass: 'Class', owner: 'Owner', status: 'Status', count: 'Count',
    category: 'Category', state: 'State', reportedAt: 'Reported', openCase: 'Open case', zoomIn: 'Zoom in',
    locating: 'Looking up…',
    state_reported: 'reported', state_registered: 'registered', state_dispatched: 'dispatched',
    state_handled: 'handled', state_suspended: 'suspended', state_closed: 'closed', state_voided: 'voided',
  },
});
