/**
 * Visualisation: cell drawings (DOT -> SVG by Graphviz as WebAssembly, SVG -> PNG by resvg)
 * and the self-contained HTML run report (Vega-Lite charts rendered to SVG in Node).
 */
export { CELL_TYPES, cellTitle, cellToDot, stateName, type CellDotOptions, type CellType } from './cell-graph.js';
export {
  drawCellSvg,
  drawGenotype,
  drawGenotypeSvg,
  drawingFormatOf,
  lowerSubscripts,
  type CellDrawingOptions,
  type DrawingFormat,
} from './cell-drawing.js';
export { renderChartSvg, runCharts, downsample, type ChartDefinition } from './charts.js';
export { dotToSvg, graphvizVersion } from './graphviz.js';
export { svgToPng, type RasterOptions } from './raster.js';
export { buildRunReport, writeRunReport, type ReportResult } from './report.js';
export {
  RunDirectoryError,
  genotypeFromSpec,
  readRunDirectory,
  type EpochRecord,
  type LogIssue,
  type RunRecord,
  type StepRecord,
  type TestRecord,
} from './run-log.js';
export { prefixSvgIds, svgElement, svgSideBySide, svgSize } from './svg.js';
