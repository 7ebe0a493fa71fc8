/**
 * A genotype's cell as a Graphviz DOT graph, drawn as the authors' visualize.py and the
 * paper's Figure 2: inputs c_{k-2} and c_{k-1}, intermediate nodes 0 .. n-1, the output
 * c_{k} fed by the concatenated states, every edge labelled with its operation. Pure text;
 * `cell-drawing.ts` lays it out.
 */
import type { Genotype } from '../darts/genotype.js';

export type CellType = 'normal' | 'reduce';

export const CELL_TYPES: readonly CellType[] = ['normal', 'reduce'];

/** "normal cell" / "reduction cell", as the paper names them. */
export function cellTitle(cell: CellType): string {
  return cell === 'normal' ? 'normal cell' : 'reduction cell';
}

/** Plain-text name of state `index` of a cell: c_{k-2}, c_{k-1}, or the node number. */
export function stateName(index: number): string {
  if (index === 0) return 'c_{k-2}';
  if (index === 1) return 'c_{k-1}';
  return String(index - 2);
}

export interface CellDotOptions {
  /** A title drawn above the cell (the graph's label); none by default. */
  title?: string;
}

// Colours of the authors' visualize.py, so that drawings look like theirs.
const INPUT_COLOUR = 'darkseagreen2';
const NODE_COLOUR = 'lightblue';
const OUTPUT_COLOUR = 'palegoldenrod';
// Graphviz (also as WebAssembly) measures Helvetica with built-in metrics; SVG viewers
// fall back to any sans-serif font.
const FONT = 'Helvetica';

function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** DOT node id of state `index` (ids stay plain; labels carry the subscripts). */
function stateId(index: number): string {
  if (index === 0) return 'c_k_2';
  if (index === 1) return 'c_k_1';
  return `n${index - 2}`;
}

/** HTML-like label with a real subscript: c<SUB>k-2</SUB>. */
function subscriptLabel(subscript: string): string {
  return `<c<SUB><FONT POINT-SIZE="14">${subscript}</FONT></SUB>>`;
}

/** The DOT text of one cell of `genotype`. */
export function cellToDot(genotype: Genotype, cell: CellType, options: CellDotOptions = {}): string {
  const pairs = genotype[cell];
  const concat = genotype[cell === 'normal' ? 'normal_concat' : 'reduce_concat'];
  const steps = pairs.length / 2;
  const lines: string[] = [
    `digraph ${cell}_cell {`,
    '  rankdir=LR;',
    // Keeps the out-edges (so mostly the nodes) in the order written: 0, 1, 2, ... top-down.
    '  ordering=out;',
    '  bgcolor=white;',
    '  pad=0.2;',
    '  nodesep=0.3;',
    '  ranksep=0.6;',
  ];
  if (options.title !== undefined) {
    lines.push(`  label=${quote(options.title)};`, '  labelloc=t;', '  fontsize=22;', `  fontname=${quote(FONT)};`);
  }
  lines.push(
    `  node [style="filled,rounded", shape=rect, fontsize=20, fontname=${quote(FONT)}, height=0.5, width=0.5, penwidth=2, margin="0.12,0.06"];`,
    `  edge [fontsize=16, fontname=${quote(FONT)}, penwidth=1.5, arrowsize=0.8];`,
    `  ${stateId(0)} [label=${subscriptLabel('k-2')}, fillcolor=${INPUT_COLOUR}, tooltip="c_{k-2}"];`,
    `  ${stateId(1)} [label=${subscriptLabel('k-1')}, fillcolor=${INPUT_COLOUR}, tooltip="c_{k-1}"];`,
  );
  for (let node = 0; node < steps; node++) {
    lines.push(`  ${stateId(node + 2)} [label=${quote(String(node))}, fillcolor=${NODE_COLOUR}];`);
  }
  lines.push(`  c_k [label=${subscriptLabel('k')}, fillcolor=${OUTPUT_COLOUR}, tooltip="c_{k}"];`);
  for (let node = 0; node < steps; node++) {
    for (const [op, input] of pairs.slice(2 * node, 2 * node + 2)) {
      lines.push(`  ${stateId(input)} -> ${stateId(node + 2)} [label=${quote(op)}];`);
    }
  }
  for (const state of concat) lines.push(`  ${stateId(state)} -> c_k [color=gray40];`);
  // Keep the two inputs on the first rank, as in the paper's drawings.
  lines.push(`  { rank=same; ${stateId(0)}; ${stateId(1)}; }`, '}');
  return lines.join('\n') + '\n';
}
