/**
 * DOT -> SVG through Graphviz compiled to WebAssembly (@hpcc-js/wasm-graphviz): no system
 * Graphviz needed. The module is loaded once per process.
 */
import { Graphviz } from '@hpcc-js/wasm-graphviz';

let graphviz: Promise<Graphviz> | undefined;

function loadGraphviz(): Promise<Graphviz> {
  graphviz ??= Graphviz.load();
  return graphviz;
}

/** Lays out `dot` with the `dot` engine and returns the SVG document. */
export async function dotToSvg(dot: string): Promise<string> {
  const instance = await loadGraphviz();
  return instance.dot(dot, 'svg');
}

/** The bundled Graphviz version, e.g. for a report's footer. */
export async function graphvizVersion(): Promise<string> {
  return (await loadGraphviz()).version();
}
