/**
 * The genotypes published by the authors of DARTS and PC-DARTS (their genotypes.py), copied
 * from the project's spec (`genotypes.json` beside pcdarts.md) so that the package has no
 * run-time dependency outside itself. One line per intermediate node: its two (op, input)
 * pairs in the authors' order. Read them through `publishedGenotype(name)`, which copies.
 */
import type { Genotype } from './genotype.js';

export const PUBLISHED_GENOTYPE_NAMES = ['PC_DARTS_cifar', 'PC_DARTS_image', 'DARTS_V1', 'DARTS_V2'] as const;

export type PublishedGenotypeName = (typeof PUBLISHED_GENOTYPE_NAMES)[number];

export const PUBLISHED_GENOTYPES: Readonly<Record<PublishedGenotypeName, Readonly<Genotype>>> = {
  PC_DARTS_cifar: {
    normal: [
      ['sep_conv_3x3', 1], ['skip_connect', 0],
      ['sep_conv_3x3', 0], ['dil_conv_3x3', 1],
      ['sep_conv_5x5', 0], ['sep_conv_3x3', 1],
      ['avg_pool_3x3', 0], ['dil_conv_3x3', 1],
    ],
    normal_concat: [2, 3, 4, 5],
    reduce: [
      ['sep_conv_5x5', 1], ['max_pool_3x3', 0],
      ['sep_conv_5x5', 1], ['sep_conv_5x5', 2],
      ['sep_conv_3x3', 0], ['sep_conv_3x3', 3],
      ['sep_conv_3x3', 1], ['sep_conv_3x3', 2],
    ],
    reduce_concat: [2, 3, 4, 5],
  },
  PC_DARTS_image: {
    normal: [
      ['skip_connect', 1], ['sep_conv_3x3', 0],
      ['sep_conv_3x3', 0], ['skip_connect', 1],
      ['sep_conv_3x3', 1], ['sep_conv_3x3', 3],
      ['sep_conv_3x3', 1], ['dil_conv_5x5', 4],
    ],
    normal_concat: [2, 3, 4, 5],
    reduce: [
      ['sep_conv_3x3', 0], ['skip_connect', 1],
      ['dil_conv_5x5', 2], ['max_pool_3x3', 1],
      ['sep_conv_3x3', 2], ['sep_conv_3x3', 1],
      ['sep_conv_5x5', 0], ['sep_conv_3x3', 3],
    ],
    reduce_concat: [2, 3, 4, 5],
  },
  DARTS_V1: {
    normal: [
      ['sep_conv_3x3', 1], ['sep_conv_3x3', 0],
      ['skip_connect', 0], ['sep_conv_3x3', 1],
      ['skip_connect', 0], ['sep_conv_3x3', 1],
      ['sep_conv_3x3', 0], ['skip_connect', 2],
    ],
    normal_concat: [2, 3, 4, 5],
    reduce: [
      ['max_pool_3x3', 0], ['max_pool_3x3', 1],
      ['skip_connect', 2], ['max_pool_3x3', 0],
      ['max_pool_3x3', 0], ['skip_connect', 2],
      ['skip_connect', 2], ['avg_pool_3x3', 0],
    ],
    reduce_concat: [2, 3, 4, 5],
  },
  DARTS_V2: {
    normal: [
      ['sep_conv_3x3', 0], ['sep_conv_3x3', 1],
      ['sep_conv_3x3', 0], ['sep_conv_3x3', 1],
      ['sep_conv_3x3', 1], ['skip_connect', 0],
      ['skip_connect', 0], ['dil_conv_3x3', 2],
    ],
    normal_concat: [2, 3, 4, 5],
    reduce: [
      ['max_pool_3x3', 0], ['max_pool_3x3', 1],
      ['skip_connect', 2], ['max_pool_3x3', 1],
      ['max_pool_3x3', 0], ['skip_connect', 2],
      ['skip_connect', 2], ['max_pool_3x3', 1],
    ],
    reduce_concat: [2, 3, 4, 5],
  },
};
