export {
  createSagaGroup,
  type ExpireSagasOptions,
  expireStaleSagas,
  getSaga,
  type OrderSaga,
  SAGA_ACTOR,
  SAGA_GROUP,
  SAGA_STATES,
  type SagaGroupOptions,
  type SagaState,
} from './order-saga';
