import { getStock, NotFoundError, SKU_PATTERN, SKU_RULE, type Sql, setStock } from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiRoutePlugin } from '../deps';
import { jsonInteger } from '../http/integers';
import { problemResponses } from '../http/problem';
import { limitedBy, type RouteContext } from '../route-context';

const skuParams = z.strictObject({
  sku: z
    .string()
    .min(1)
    .max(64)
    .regex(SKU_PATTERN, SKU_RULE)
    .meta({ description: 'Letters, digits, `.`, `_` and `-`; starts with a letter or digit', example: 'SKU-1' }),
});

const setStockSchema = z
  .strictObject({
    available: jsonInteger(0, 2_147_483_647).meta({
      description: 'Units available to reserve (replaces the current count)',
      example: 25,
    }),
  })
  .meta({ description: 'A stock count for one SKU', example: { available: 25 } });

const stockSchema = z
  .object({
    sku: z.string().meta({ example: 'SKU-1' }),
    available: z.number().int().meta({ description: 'Units free to reserve', example: 25 }),
    reserved: z.number().int().meta({ description: 'Units held by orders', example: 3 }),
  })
  .meta({ description: 'Stock of one SKU', example: { sku: 'SKU-1', available: 25, reserved: 3 } });

/** `/v1/inventory/:sku`: set a SKU's available stock (a stock count) and read it back. */
export function inventoryRoutes(sql: Sql): FastifyPluginAsyncZod<RouteContext> {
  return async (app, ctx) => {
    const find = async (sku: string) => {
      const stock = await getStock(sql, sku);
      if (!stock) throw new NotFoundError(`sku ${sku} not found`, { sku });
      return stock;
    };

    app.put(
      '/inventory/:sku',
      {
        config: limitedBy(ctx.limits.ingest),
        schema: {
          tags: ['inventory'],
          summary: "Set a SKU's available stock",
          description:
            'Creates the SKU if new; otherwise replaces `available` and leaves `reserved` as it is. `available` ' +
            'plus `reserved` must fit 2147483647 (422 STOCK_OUT_OF_RANGE naming the most it may be): reserved ' +
            'units come back to `available` when their orders are cancelled.',
          params: skuParams,
          body: setStockSchema,
          response: { 200: stockSchema, ...problemResponses(400, 415, 422, 429, 503) },
        },
      },
      async (request) => {
        await setStock(sql, request.params.sku, request.body.available);
        return find(request.params.sku);
      },
    );

    app.get(
      '/inventory/:sku',
      {
        schema: {
          tags: ['inventory'],
          summary: "A SKU's stock",
          params: skuParams,
          response: { 200: stockSchema, ...problemResponses(400, 404, 503) },
        },
      },
      async (request) => find(request.params.sku),
    );
  };
}

/** The inventory API as a plugin for `buildApp(config, { plugins: [...] })`. */
export function inventoryPlugin(sql: Sql): ApiRoutePlugin {
  return {
    name: 'inventory',
    plugin: inventoryRoutes(sql),
    prefix: '/v1',
    tag: { name: 'inventory', description: 'Stock per SKU of the reference domain' },
  };
}
