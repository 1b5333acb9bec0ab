export {
  type ChargeRequest,
  type ChargeResult,
  createPaymentGateway,
  createPaymentGatewayFromConfig,
  HttpPaymentGateway,
  type HttpPaymentGatewayOptions,
  type PaymentGateway,
  type PaymentGatewayOptions,
  PaymentGatewayUnavailableError,
  type RefundRequest,
  SimulatedPaymentGateway,
  type SimulatedPaymentGatewayOptions,
} from './payment-gateway';
export {
  createPaymentGroup,
  getPayment,
  PAYMENT_GROUP,
  type PaymentGroupOptions,
  type PaymentRecord,
  type PaymentStatus,
} from './payment-service';
