/**
 * The report's charts as Vega-Lite specifications, rendered to SVG in Node by Vega (no
 * canvas, no browser, no script in the page): curves over epochs and steps, skip-connect
 * counts, and heatmaps of the architecture weights over epochs.
 */
import { View, parse } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

import { nodeFirstEdge } from '../darts/genotype.js';
import { PRIMITIVES } from '../darts/primitives.js';
import { cellTitle, type CellType } from './cell-graph.js';
import { type EpochRecord, type RunRecord, runSettings, type StepRecord } from './run-log.js';

export interface ChartDefinition {
  /** Stable id (an HTML id and a test hook): 'loss-epoch', 'edge-weights-normal', ... */
  id: string;
  title: string;
  /** One sentence under the chart: what is drawn and how. */
  caption: string;
  spec: TopLevelSpec;
}

/** Most points a step-level curve keeps; longer series are averaged over equal windows. */
export const MAX_CURVE_POINTS = 1500;

const CONFIG = {
  font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' as const },
};

const CURVE_WIDTH = 440;
const CURVE_HEIGHT = 220;

interface Point {
  x: number;
  series: string;
  value: number;
}

/** Renders a Vega-Lite specification to an SVG document (server side, no canvas). */
export async function renderChartSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Mean over consecutive windows so that a series keeps at most `maxPoints` points. */
export function downsample<T extends { x: number; value: number }>(points: readonly T[], maxPoints = MAX_CURVE_POINTS): T[] {
  if (points.length <= maxPoints) return [...points];
  const window = Math.ceil(points.length / maxPoints);
  const result: T[] = [];
  for (let start = 0; start < points.length; start += window) {
    const slice = points.slice(start, start + window);
    const mean = (key: 'x' | 'value'): number => slice.reduce((s, p) => s + p[key], 0) / slice.length;
    result.push({ ...slice[0]!, x: mean('x'), value: mean('value') });
  }
  return result;
}

function lineChart(
  id: string,
  title: string,
  caption: string,
  points: Point[],
  axes: { x: string; y: string; seriesOrder: string[]; zero?: boolean; wholeX?: boolean; wholeY?: boolean; warmup?: Band },
): ChartDefinition {
  const present = axes.seriesOrder.filter((series) => points.some((p) => p.series === series));
  const perSeries = points.length / Math.max(1, present.length);
  const line = {
      data: { values: points },
      mark: { type: 'line', point: perSeries <= 60, strokeWidth: 1.5 },
      encoding: {
        x: {
          field: 'x',
          type: 'quantitative',
          title: axes.x,
          scale: { nice: false },
          ...(axes.wholeX ? { axis: { tickMinStep: 1, format: 'd' } } : {}),
        },
        y: {
          field: 'value',
          type: 'quantitative',
          title: axes.y,
          scale: { zero: axes.zero ?? false },
          ...(axes.wholeY ? { axis: { tickMinStep: 1, format: 'd' } } : {}),
        },
        color: { field: 'series', type: 'nominal', title: null, sort: present, legend: { orient: 'bottom', labelLimit: 260 } },
      },
  };
  // The warm-up epochs (no architecture step) as a grey band behind the curves.
  const band = axes.warmup === undefined ? [] : [{
    data: { values: [{ ...axes.warmup, label: 'warm-up' }] },
    layer: [
      { mark: { type: 'rect', color: '#ececec' }, encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } } },
      { mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, color: '#777', fontSize: 11 }, encoding: { x: { field: 'from', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } } },
    ],
  }];
  return {
    id,
    title,
    caption: axes.warmup === undefined ? caption : `${caption} Grey: the warm-up epochs (weights only, no architecture step).`,
    spec: (band.length === 0
      ? { title, width: CURVE_WIDTH, height: CURVE_HEIGHT, config: CONFIG, ...line }
      : { title, width: CURVE_WIDTH, height: CURVE_HEIGHT, config: CONFIG, layer: [...band, line] }) as TopLevelSpec,
  };
}

/** A span of the x axis: [from, to] in epochs. */
interface Band {
  from: number;
  to: number;
}

/**
 * The warm-up of a search as an x band, in the charts' epoch numbers (epoch n's summary sits at
 * x = n, its steps in (n - 1, n]); undefined for training runs and searches without warm-up.
 */
export function warmupBand(run: RunRecord): Band | undefined {
  const warmup = runSettings(run).warmupEpochs;
  if (run.kind !== 'search' || typeof warmup !== 'number' || warmup <= 0) return undefined;
  return { from: 0, to: warmup };
}

function epochPoints(epochs: readonly EpochRecord[], series: [string, keyof EpochRecord][]): Point[] {
  const points: Point[] = [];
  for (const [name, field] of series) {
    for (const epoch of epochs) {
      const value = epoch[field];
      if (typeof value === 'number') points.push({ x: epoch.epoch + 1, series: name, value });
    }
  }
  return points;
}

/** x of a step: the epochs done once it is done (epoch n, 1-based, spans (n - 1, n]; steps per epoch: the most logged). */
function stepPoints(steps: readonly StepRecord[], series: [string, keyof StepRecord][]): Point[] {
  const stepsPerEpoch = Math.max(1, ...steps.map((s) => s.step + 1));
  const points: Point[] = [];
  for (const [name, field] of series) {
    const one: Point[] = [];
    for (const step of steps) {
      const value = step[field];
      if (typeof value === 'number') one.push({ x: step.epoch + (step.step + 1) / stepsPerEpoch, series: name, value });
    }
    points.push(...downsample(one));
  }
  return points;
}

function averagedNote(steps: readonly StepRecord[]): string {
  return steps.length > MAX_CURVE_POINTS
    ? ` ${steps.length} steps, shown as means over windows of ${Math.ceil(steps.length / MAX_CURVE_POINTS)}.`
    : '';
}

/** Where the run's accuracies are fractions, the axis says so; else they are percent. */
function accuracyTitle(points: readonly Point[]): string {
  return points.every((p) => p.value <= 1) ? 'accuracy (fraction)' : 'accuracy (%)';
}

/** The curves' captions: a search has two halves and two kinds of step, a training run neither. */
function curveCaptions(run: RunRecord): { loss: string; accuracy: string; steps: string; stepSeries: [string, string]; lr: string } {
  if (run.kind === 'search') {
    return {
      loss: 'Mean cross-entropy of each epoch (1-based): the weights\' half of the training set (train), the architecture\'s half (valid).',
      accuracy: 'Top-1 accuracy of each epoch (1-based): the weights\' half (train), the architecture\'s half (valid).',
      steps: 'Batch losses: weight steps (on the weights\' half), architecture steps (on the architecture\'s half).',
      stepSeries: ['weight step', 'architecture step'],
      lr: 'Learning rate of the weight optimiser (SGD; the architecture\'s Adam has its own fixed rate).',
    };
  }
  return {
    loss: 'Mean cross-entropy of each epoch (1-based): the training images (with augmentation, drop path and the auxiliary loss), the held-out validation images, the test split, where logged.',
    accuracy: 'Top-1 accuracy of each epoch (1-based): training, validation (with --valid-portion), test, where logged.',
    steps: 'Training batch losses (main loss plus the weighted auxiliary loss).',
    stepSeries: ['training step', 'unused'],
    lr: 'Learning rate of SGD over the epochs (its schedule: cosine or linear, after any warm-up).',
  };
}

function curveCharts(run: RunRecord): ChartDefinition[] {
  const charts: ChartDefinition[] = [];
  const { epochs, steps } = run;
  const captions = curveCaptions(run);
  const warmup = warmupBand(run);
  const loss = epochPoints(epochs, [['train', 'trainLoss'], ['valid', 'validLoss'], ['test', 'testLoss']]);
  if (loss.length > 0) {
    charts.push(lineChart('loss-epoch', 'Loss per epoch', captions.loss, loss, {
      x: 'epoch', y: 'loss', seriesOrder: ['train', 'valid', 'test'], wholeX: true, warmup,
    }));
  }
  const accuracy = epochPoints(epochs, [['train', 'trainAcc'], ['valid', 'validAcc'], ['test', 'testAcc']]);
  if (accuracy.length > 0) {
    charts.push(lineChart('accuracy-epoch', 'Accuracy per epoch', captions.accuracy, accuracy, {
      x: 'epoch', y: accuracyTitle(accuracy), seriesOrder: ['train', 'valid', 'test'], wholeX: true, warmup,
    }));
  }
  const stepLoss = stepPoints(steps, [[captions.stepSeries[0], 'loss'], [captions.stepSeries[1], 'archLoss']]);
  if (stepLoss.length > 0) {
    charts.push(lineChart('loss-step', 'Loss per step', `${captions.steps}${averagedNote(steps)}`, stepLoss, {
      x: 'epoch', y: 'loss', seriesOrder: captions.stepSeries, warmup,
    }));
  }
  const stepLr = stepPoints(steps, [['lr', 'lr']]);
  const lr = stepLr.length > 0 ? stepLr : epochPoints(epochs, [['lr', 'lr']]);
  if (lr.length > 0) {
    charts.push(lineChart('learning-rate', 'Learning rate', captions.lr, lr, {
      x: 'epoch', y: 'learning rate', seriesOrder: ['lr'], zero: true, wholeX: stepLr.length === 0, warmup,
    }));
  }
  const throughput = stepPoints(steps, [['images/s', 'imagesPerSecond']]);
  if (throughput.length > 0) {
    charts.push(lineChart('throughput', 'Throughput', `${run.kind === 'search' ? 'Images of the weights\' half per second (an architecture step included once they begin).' : 'Training images per second.'}${averagedNote(steps)}`, throughput, {
      x: 'epoch', y: 'images/s', seriesOrder: ['images/s'], zero: true,
    }));
  }
  const skips: Point[] = [];
  for (const epoch of epochs) {
    const counts = epoch.skipConnects;
    if (counts === undefined) continue;
    if (counts.normal !== undefined) skips.push({ x: epoch.epoch + 1, series: 'normal cell', value: counts.normal });
    if (counts.reduce !== undefined) skips.push({ x: epoch.epoch + 1, series: 'reduction cell', value: counts.reduce });
    if (counts.total !== undefined) skips.push({ x: epoch.epoch + 1, series: 'as logged', value: counts.total });
  }
  if (skips.length > 0) {
    charts.push(lineChart('skip-connects', 'skip_connect count per epoch', "Number of skip_connect operations in each epoch's derived genotype (the collapse DARTS is known for shows as a rise).", skips, {
      x: 'epoch', y: 'skip_connect operations', seriesOrder: ['normal cell', 'reduction cell', 'as logged'], zero: true, wholeX: true, wholeY: true, warmup,
    }));
  }
  return charts;
}

/** "node 2 <- c_{k-1}"-style name of edge `e` (node i takes inputs 0 .. i+1). */
function edgeParts(edge: number): { node: number; input: number } {
  let node = 0;
  while (nodeFirstEdge(node + 1) <= edge) node++;
  return { node, input: edge - nodeFirstEdge(node) };
}

/**
 * softmax(α) of every edge of a cell over the epochs: per edge the operations sum to 1, so the
 * winning operation of each edge stands out (β, which weighs the edges of a node against each
 * other, is its own chart: multiplied in, it would colour whole nodes).
 */
function edgeWeightChart(run: RunRecord, cell: CellType): ChartDefinition | undefined {
  const epochs = run.epochs.filter((e) => e.alphaWeights !== undefined || e.edgeWeights !== undefined);
  if (epochs.length === 0) return undefined;
  // Rows and columns are facetted by number (node, input state) and labelled by expression:
  // facetting by the label text itself misplaced the panels of this ragged grid.
  const rows: { epoch: number; node: number; input: number; op: string; w: number }[] = [];
  let steps = 0;
  for (const epoch of epochs) {
    (epoch.alphaWeights ?? epoch.edgeWeights!)[cell].forEach((weights, edge) => {
      const { node, input } = edgeParts(edge);
      steps = Math.max(steps, node + 1);
      weights.forEach((w, o) => rows.push({ epoch: epoch.epoch + 1, node, input, op: PRIMITIVES[o]!, w }));
    });
  }
  const inputLabels = JSON.stringify(Array.from({ length: steps + 1 }, (_, j) => inputTitle(j)));
  const withBetas = epochs.some((e) => e.betaWeights !== undefined);
  const panelWidth = Math.max(60, Math.min(260, epochs.length * 8));
  const title = `${cellTitle(cell)}: softmax(α) per edge and operation`;
  const warmup = warmupBand(run);
  return {
    id: `edge-weights-${cell}`,
    title,
    caption:
      'One panel per edge (row: the node, column: its input); in each, softmax(α) of every operation (rows) over the epochs (columns, 1-based): ' +
      'the operations of an edge sum to 1, so its winner is the brightest cell. ' +
      `The genotype keeps, per node, the two edges with the largest ${withBetas ? 'W = softmax(α) · β (β: the chart "Edge normalisation")' : 'weight'} outside "none".` +
      `${warmup !== undefined ? ` Epochs 1-${warmup.to} are the warm-up: no architecture step, the weights stay where they started.` : ''}`,
    spec: {
      title,
      config: CONFIG,
      data: { values: rows },
      facet: {
        row: {
          field: 'node',
          type: 'ordinal',
          title: null,
          header: { labelAngle: 0, labelAlign: 'left', labelFontSize: 12, labelExpr: "'node ' + datum.value" },
        },
        column: {
          field: 'input',
          type: 'ordinal',
          title: 'input',
          header: { labelFontSize: 12, labelExpr: `${inputLabels}[datum.value]` },
        },
      },
      spec: {
        width: panelWidth,
        height: PRIMITIVES.length * 11,
        mark: 'rect',
        encoding: {
          x: { field: 'epoch', type: 'ordinal', title: 'epoch', axis: { labelOverlap: 'parity', labelAngle: 0 } },
          y: { field: 'op', type: 'nominal', sort: [...PRIMITIVES], title: null },
          color: { field: 'w', type: 'quantitative', title: 'W', scale: { scheme: 'viridis', domainMin: 0 } },
        },
      },
      spacing: 8,
    } as TopLevelSpec,
  };
}

/** Chart label of input state `input`: cₖ₋₂, cₖ₋₁ (Unicode subscripts), node j. */
function inputTitle(input: number): string {
  if (input === 0) return 'c\u2096\u208b\u2082';
  if (input === 1) return 'c\u2096\u208b\u2081';
  return `node ${input - 2}`;
}

function betaChart(run: RunRecord): ChartDefinition | undefined {
  const epochs = run.epochs.filter((e) => e.betaWeights !== undefined);
  if (epochs.length === 0) return undefined;
  const rows: { epoch: number; cell: string; edge: string; beta: number }[] = [];
  const edgeNames: string[] = [];
  for (const epoch of epochs) {
    for (const cell of ['normal', 'reduce'] as const) {
      epoch.betaWeights![cell].forEach((beta, edge) => {
        const { node, input } = edgeParts(edge);
        const name = `node ${node} ← ${inputTitle(input)}`;
        if (!edgeNames.includes(name)) edgeNames.push(name);
        rows.push({ epoch: epoch.epoch + 1, cell: cellTitle(cell), edge: name, beta });
      });
    }
  }
  return {
    id: 'betas',
    title: 'Edge normalisation: β per node input',
    caption: "β of every edge, normalised over the inputs of its node (a softmax per node: each node's values sum to 1), over the epochs (1-based); it weighs the edges of a node against each other when the genotype is derived.",
    spec: {
      title: 'Edge normalisation: β per node input',
      config: CONFIG,
      data: { values: rows },
      facet: { column: { field: 'cell', type: 'nominal', title: null, sort: [cellTitle('normal'), cellTitle('reduce')], header: { labelFontSize: 12 } } },
      spec: {
        width: Math.max(120, Math.min(420, epochs.length * 10)),
        height: edgeNames.length * 14,
        mark: 'rect',
        encoding: {
          x: { field: 'epoch', type: 'ordinal', title: 'epoch', axis: { labelOverlap: 'parity', labelAngle: 0 } },
          y: { field: 'edge', type: 'nominal', sort: edgeNames, title: null },
          color: { field: 'beta', type: 'quantitative', title: 'β', scale: { scheme: 'viridis', domain: [0, 1] } },
        },
      },
    } as TopLevelSpec,
  };
}

/** Every chart the run has data for, in report order: curves first, then architecture weights. */
export function runCharts(run: RunRecord): ChartDefinition[] {
  const charts = curveCharts(run);
  for (const cell of ['normal', 'reduce'] as const) {
    const chart = edgeWeightChart(run, cell);
    if (chart !== undefined) charts.push(chart);
  }
  const betas = betaChart(run);
  if (betas !== undefined) charts.push(betas);
  return charts;
}
