/**
 * Drawings of a genotype's cells (the paper's Figure 2) as SVG or PNG. One cell per drawing,
 * or both: then one document with the normal cell on the left and the reduction cell on the
 * right, each titled.
 */
import type { Genotype } from '../darts/genotype.js';
import { CELL_TYPES, cellTitle, cellToDot, type CellType } from './cell-graph.js';
import { dotToSvg } from './graphviz.js';
import { svgToPng, type RasterOptions } from './raster.js';
import { svgElement, svgSideBySide } from './svg.js';

export interface CellDrawingOptions {
  /** Draw the title ("normal cell", "reduction cell") above the cell; default true. */
  title?: boolean;
}

/** One cell as an SVG element (no XML prolog, so that it can be inlined into HTML too). */
export async function drawCellSvg(genotype: Genotype, cell: CellType, options: CellDrawingOptions = {}): Promise<string> {
  const title = options.title ?? true;
  const dot = cellToDot(genotype, cell, title ? { title: cellTitle(cell) } : {});
  return lowerSubscripts(svgElement(await dotToSvg(dot)));
}

/**
 * Graphviz writes an HTML label's <SUB> as a separate <text baseline-shift="sub">, which
 * neither resvg nor Chromium honour on a <text> element: move such text down explicitly.
 */
export function lowerSubscripts(svg: string): string {
  return svg.replace(/<text\b[^>]*\bbaseline-shift="sub"[^>]*>/g, (tag) => {
    const fontSize = Number(/\bfont-size="([0-9.]+)"/.exec(tag)?.[1] ?? '14');
    return tag
      .replace(/\sbaseline-shift="sub"/, '')
      .replace(/\by="(-?[0-9.]+)"/, (_, y: string) => `y="${(Number(y) + 0.35 * fontSize).toFixed(2)}"`);
  });
}

/** The given cells (default both) side by side in one SVG document. */
export async function drawGenotypeSvg(
  genotype: Genotype,
  cells: readonly CellType[] = CELL_TYPES,
  options: CellDrawingOptions = {},
): Promise<string> {
  const drawings = await Promise.all(cells.map((cell) => drawCellSvg(genotype, cell, options)));
  return drawings.length === 1 ? drawings[0]! + '\n' : svgSideBySide(drawings, 48);
}

export type DrawingFormat = 'svg' | 'png';

/** The output format implied by a file name's extension, or undefined for another one. */
export function drawingFormatOf(path: string): DrawingFormat | undefined {
  const extension = /\.([A-Za-z]+)$/.exec(path)?.[1]?.toLowerCase();
  return extension === 'svg' || extension === 'png' ? extension : undefined;
}

/** The drawing as file contents: SVG text or PNG bytes. */
export async function drawGenotype(
  genotype: Genotype,
  format: DrawingFormat,
  cells: readonly CellType[] = CELL_TYPES,
  options: CellDrawingOptions & RasterOptions = {},
): Promise<string | Buffer> {
  const svg = await drawGenotypeSvg(genotype, cells, options);
  return format === 'svg' ? svg : svgToPng(svg, options);
}
