/** The architect of a search method by its order (src/run/search.ts, the fixture checker). */
import { type Architect, type ArchitectOptions, type ArchitectOrder, DEFAULT_ARCHITECT, FirstOrderArchitect } from './architect.js';
import { SecondOrderArchitect } from './second-order-architect.js';
import type { SearchNetwork } from './search-network.js';

export function createArchitect(order: ArchitectOrder, model: SearchNetwork, options: ArchitectOptions = DEFAULT_ARCHITECT): Architect {
  if (order === 2) return new SecondOrderArchitect(model, options);
  if (order === 1) return new FirstOrderArchitect(model, options);
  throw new Error(`architect order: expected 1 or 2, got ${String(order)}`);
}
