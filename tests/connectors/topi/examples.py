"""topi's published examples, verbatim from its OpenAPI files (order API and shipment API)."""

FULL_ORDER_EXAMPLE = r"""{
  "assets": [
    {
      "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
      "product_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
      "seller_product_references": [
        {
          "reference": "123ab-5343",
          "source": "sap"
        }
      ],
      "serial_number": "BA-3456786-334-9",
      "status": "shipped",
      "title": "Pro Laptop 64GB",
      "tracking_url": "abc123"
    }
  ],
  "canceled_at": "1970-01-01T00:00:01Z",
  "created_at": "1970-01-01T00:00:01Z",
  "customer_info": {
    "company": {
      "billing_address": {
        "city": "Munich",
        "country_code": "DE",
        "line1": "10 Downing Street",
        "line2": "Flat 42",
        "postal_code": "10243",
        "region": "Bavaria"
      },
      "name": "Unicorn Corp",
      "tax_number": "123456789",
      "vat_number": "DE123456789"
    },
    "customer_group": "education",
    "email": "alice@example.com",
    "full_name": "John Butler",
    "phone_number": "abc123"
  },
  "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
  "metadata": {
    "tracking_number": "123456"
  },
  "offer_created_at": "1970-01-01T00:00:01Z",
  "offer_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
  "order_lines": [
    {
      "base_rental_price": {
        "currency": "EUR",
        "gross": 119000,
        "net": 100000
      },
      "contract_type": "rent",
      "duration": 6,
      "monthly_price": {
        "currency": "EUR",
        "gross": 119000,
        "net": 100000
      },
      "pretty_id": "abc123",
      "product_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
      "quantity": 1,
      "selected_first_party_services": [
        {
          "additional_values": {
            "accessory_type": "experiment_charger"
          },
          "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
          "monthly_price": {
            "currency": "EUR",
            "gross": 119000,
            "net": 100000
          },
          "type": "topi_replace"
        }
      ],
      "seller_product_references": [
        {
          "reference": "123ab-5343",
          "source": "sap"
        }
      ],
      "sublines": [
        {
          "base_rental_price": {
            "currency": "EUR",
            "gross": 119000,
            "net": 100000
          },
          "contract_type": "rent",
          "duration": 6,
          "monthly_price": {
            "currency": "EUR",
            "gross": 119000,
            "net": 100000
          },
          "pretty_id": "abc123",
          "product_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
          "quantity": 1,
          "selected_first_party_services": [
            {
              "additional_values": {
                "accessory_type": "experiment_charger"
              },
              "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
              "monthly_price": {
                "currency": "EUR",
                "gross": 119000,
                "net": 100000
              },
              "type": "topi_replace"
            }
          ],
          "seller_product_references": [
            {
              "reference": "123ab-5343",
              "source": "sap"
            }
          ],
          "subtitle": "abc123",
          "title": "abc123",
          "unit_price": {
            "currency": "EUR",
            "gross": 119000,
            "net": 100000
          }
        }
      ],
      "subtitle": "abc123",
      "title": "abc123",
      "unit_price": {
        "currency": "EUR",
        "gross": 119000,
        "net": 100000
      }
    }
  ],
  "sales_agent": {
    "email": "alice@example.com",
    "external_agent_id": "abc123",
    "name": "abc123",
    "phone": "abc123"
  },
  "seller_info": {
    "address": {
      "city": "abc123",
      "country_code": "DE",
      "line1": "abc123",
      "line2": "aaa",
      "postal_code": "abc123",
      "region": "abc123"
    },
    "capability_add_custom_products": false,
    "capability_anonymized_pricing": false,
    "capability_anonymous_ecom_offer_creation": false,
    "capability_bundles": false,
    "capability_chatbot_id": "abc123",
    "capability_dual_pricing": false,
    "capability_hide_buy_now": false,
    "capability_international_shipment": false,
    "currency": "abc123",
    "email": "abc123",
    "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
    "logo_url": "abc123",
    "name": "abc123",
    "parent_seller_id": "abc123",
    "pdf_reader_assistant_id": "abc123",
    "pretty_name": "abc123",
    "product_reference_source": "abc123"
  },
  "seller_offer_reference": "abc123",
  "shipping_address": {
    "city": "Munich",
    "country_code": "DE",
    "line1": "10 Downing Street",
    "line2": "Flat 42",
    "postal_code": "10243",
    "recipient_name": "Felix Wolf",
    "region": "Bavaria"
  },
  "shipping_info": {
    "is_in_store_pickup": false,
    "price": {
      "currency": "EUR",
      "gross": 119000,
      "net": 100000
    },
    "seller_shipping_reference": "Sandbox Shipping Service"
  },
  "status": "confirmed",
  "tracking_urls": [
    "abc123"
  ]
}"""

ORDER_RESULT_EXAMPLE = r"""{
  "assets": [
    {
      "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
      "product_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
      "seller_product_references": [
        {
          "reference": "123ab-5343",
          "source": "sap"
        }
      ],
      "serial_number": "BA-3456786-334-9",
      "status": "shipped",
      "title": "Pro Laptop 64GB",
      "tracking_url": "abc123"
    }
  ],
  "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
  "metadata": {
    "tracking_number": "123456"
  },
  "offer_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
  "seller_offer_reference": "abc123",
  "status": "confirmed"
}"""

PAGINATED_EXAMPLE = r"""{
  "orders": [
    {
      "agent_name": "abc123",
      "company_name": "abc123",
      "created_at": "1970-01-01T00:00:01Z",
      "full_name": "abc123",
      "id": "739b63c2-9e58-4964-b38d-4ebb424de242",
      "offer_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
      "seller_offer_reference": "abc123",
      "status": "confirmed"
    }
  ],
  "pagination": {
    "page": 1,
    "page_size": 1,
    "total_count": 1,
    "total_pages": 1
  }
}"""

SHIPMENT_REQUEST_EXAMPLE = r"""{
  "metadata": {
    "tracking_number": "123456"
  },
  "order_id": "739b63c2-9e58-4964-b38d-4ebb424de242",
  "serial_numbers": [
    {
      "seller_product_reference": {
        "reference": "123ab-5343",
        "source": "sap"
      },
      "serial_number": "BA-3456786-334-9"
    }
  ],
  "tracking_url": "https://example.com/foo"
}"""
