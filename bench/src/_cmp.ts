import { makeEvents } from './common';
import { fleetRun } from './scenarios/fleet';

const ev = makeEvents(50000);
for (let i = 0; i < 2; i++) {
  const a = await fleetRun(ev);
  const b = await fleetRun(ev, { failEvery: 100 });
  console.log(
    'clean',
    Math.round(a.perSecond),
    a.handlersDoneMs.toFixed(0),
    a.ackedMs.toFixed(0),
    'fail',
    Math.round(b.perSecond),
    b.handlersDoneMs.toFixed(0),
    b.ackedMs.toFixed(0),
    'retriesDone',
    b.retriesDoneMs?.toFixed(0),
  );
}
