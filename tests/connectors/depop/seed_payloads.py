# ruff: noqa: E501  (the payloads are verbatim; re-wrapping their long strings would change them)
"""Example payloads copied verbatim from seeds/depop-seller-api.txt (Depop's Seller API docs)."""

ORDER_NEW_WEBHOOK = b"""{
    "id": "a210923f-c1f3-4d84-a2bd-7f18c68553e2",
    "event_type": "v1:order.new",
    "created_at": "2025-01-01T00:00:00Z",
    "data": {
        "seller_id": 123456,
        "purchase_id": "123456",
        "status": "SHIPPING_PENDING",
        "currency": "GBP",
        "buyer_pays_amount": "50.99",
        "seller_receives_amount": "45.99",
        "buyer_shipping_price": "5.00",
        "buyer_tax_amount": "3.24",
        "buyer_address": {
            "name": "John Doe",
            "address": "123 Main St",
            "address2": "Apt 1",
            "city": "London",
            "postal_code": "EC1V 4PW",
            "state": "Greater London",
            "country_code": "GB"
        },
        "line_items": [
            {
                "purchase_item_id": 2385551,
                "sku": "ABC-12345-S-BL",
                "product_id": 7021251,
                "slug": "vintage-nike-t-shirt-7021251",
                "parcel_id": "6e3538ca-6653-3c25-bf0a-a2be876b17e4",
                "description": "Vintage Nike T-Shirt in excellent condition. Black with white swoosh logo on the front.",
                "original_price": "29.99",
                "sold_price": "25.99",
                "sold_via_offers": false,
                "image_url": "https://media-photos-staging.depop.com/b0/18220/5612584_b6795bc34778465293e45647518906d6/P0.jpg"
            }
        ],
        "seller_fee_breakdown": [
            {
                "fee_type": "DEPOP_FEE",
                "amount": "3.00",
                "currency": "GBP"
            },
            {
                "fee_type": "PAYMENT_FEE",
                "amount": "2.00",
                "currency": "GBP"
            },
            {
                "fee_type": "SHIPPING_FEE",
                "amount": "0.00",
                "currency": "GBP"
            }
        ],
        "created_at": "2025-01-01T00:00:00Z"
    }
}"""

ORDER_REFUND_WEBHOOK = b"""{
    "id": "a210923f-c1f3-4d84-a2bd-7f18c68553e2",
    "event_type": "v1:order.refund",
    "created_at": "2025-01-01T00:00:00Z",
    "data": {
        "purchase_id": "123456",
        "refunded_by": "PARTNER"
    }
}"""

PRODUCT_LIKE_WEBHOOK = b"""{
    "id": "b320934f-d2g4-5e95-b3ce-8g29d79664f3",
    "event_type": "v1:product.like",
    "created_at": "2025-01-01T00:00:00Z",
    "data": {
        "seller_id": 123456,
        "product_id": 7021251,
        "sku": "ABC-12345-S-BL",
        "slug": "vintage-nike-t-shirt-7021251",
        "liker_id": 789012
    }
}"""

PRODUCT_UNLIKE_WEBHOOK = b"""{
    "id": "c431045g-e3h5-6f06-c4df-9h30e80775g4",
    "event_type": "v1:product.unlike",
    "created_at": "2025-01-01T00:00:00Z",
    "data": {
        "seller_id": 123456,
        "product_id": 7021251,
        "sku": "ABC-12345-S-BL",
        "slug": "vintage-nike-t-shirt-7021251",
        "liker_id": 789012
    }
}"""

GET_ORDER_RESPONSE = b"""{
    "seller_id": 123456,
    "purchase_id": "123456",
    "status": "SHIPPING_PENDING",
    "currency": "GBP",
    "buyer_pays_amount": "50.99",
    "seller_receives_amount": "45.99",
    "buyer_shipping_price": "5.00",
    "buyer_tax_amount": "3.24",
    "buyer_address": {
        "name": "John Doe",
        "address": "123 Main St",
        "address2": "Apt 1",
        "city": "London",
        "postal_code": "EC1V 4PW",
        "state": "Greater London",
        "country_code": "GB"
    },
    "line_items": [
        {
            "purchase_item_id": 2385551,
            "sku": "ABC-12345-S-BL",
            "product_id": 7021251,
            "slug": "vintage-nike-t-shirt-7021251",
            "parcel_id": "6e3538ca-6653-3c25-bf0a-a2be876b17e4",
            "description": "Vintage Nike T-Shirt in excellent condition. Black with white swoosh logo on the front.",
            "original_price": "29.99",
            "sold_price": "25.99",
            "sold_via_offers": false,
            "image_url": "https://media-photos-staging.depop.com/b0/18220/5612584_b6795bc34778465293e45647518906d6/P0.jpg"
        }
    ],
    "seller_fee_breakdown": [
        {
            "fee_type": "DEPOP_FEE",
            "amount": "3.00",
            "currency": "GBP"
        },
        {
            "fee_type": "PAYMENT_FEE",
            "amount": "2.00",
            "currency": "GBP"
        },
        {
            "fee_type": "SHIPPING_FEE",
            "amount": "0.00",
            "currency": "GBP"
        }
    ],
    "created_at": "2025-01-01T12:00:00Z"
}"""

LIST_ORDERS_RESPONSE = b"""{
    "meta": {
        "cursor": "123456789",
        "has_more": false
    },
    "data": []
}"""

REFUND_VALIDATION_ERRORS = b"""{
    "id": "a210923f-c1f3-4d84-a2bd-7f18c68553e2",
    "errors": [
        {
            "code": "validation",
            "message": "Refund for purchase id 123456 must have an item amount or a shipping amount to refund."
        },
        {
            "code": "validation",
            "message": "Refund for purchase id 123456 must have a positive amount to refund."
        },
        {
            "code": "validation",
            "message": "Refund for purchase id 123456 has items_refund_amount greater than product price."
        },
        {
            "code": "validation",
            "message": "Refund for purchase id 123456 has shipping_refund_amount greater than shipping price."
        }
    ]
}"""
