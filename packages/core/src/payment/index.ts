export {
  type ChargeRequest,
  type ChargeResult,
  createPaymentGateway,
  HttpPaymentGateway,
  type HttpPaymentGatewayOptions,
  type PaymentGateway,
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
