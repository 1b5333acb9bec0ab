export {
  applyToReadModel,
  createProjectionGroup,
  getOrderView,
  type ListOrdersQuery,
  listOrders,
  type OrderPage,
  PROJECTION_GROUP,
  type ProjectionGroupOptions,
  type ProjectionOutcome,
  rebuildOrderView,
} from './order-projection';
