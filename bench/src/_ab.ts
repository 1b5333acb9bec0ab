import { makeEvents } from './common';
import { fleetRun } from './scenarios/fleet';

const ev = makeEvents(Number(process.env.AB_N ?? 50000));
const r = await fleetRun(ev, process.env.AB_GROUPS ? { groups: 4 } : {});
console.log(`${process.env.AB_LABEL} ${Math.round(r.perSecond)} ${r.cpuUsPerEvent.toFixed(2)}`);
process.exit(0);
