export {
  createInventoryGroup,
  getStock,
  INVENTORY_GROUP,
  type InventoryGroupOptions,
  type StockLevel,
  type StockLine,
  setStock,
} from './inventory-service';
